import { countLive, dismissToast, markRead, MAX_TOASTS, parseLive, prependLive, pushToast, summaryOf, type Notification, type NotificationPage } from "./model";

const note = (id: number, read = false): Notification => ({
  id,
  kind: "price_above",
  title: `Alert ${id}`,
  body: "BTC/USDT above 100,000",
  data: {},
  created_at: "2026-12-05T10:00:00Z",
  read_at: read ? "2026-12-05T11:00:00Z" : null,
  deliveries: [],
});
const pageOf = (items: Notification[], total = items.length): NotificationPage => ({
  items,
  total,
  unread: items.filter((n) => n.read_at === null).length,
  limit: 20,
  offset: 0,
});

describe("unread counting", () => {
  it("counts a live notification newer than the summary once", () => {
    const summary = summaryOf(pageOf([note(7), note(5, true)]));
    expect(summary).toEqual({ unread: 1, newestId: 7 });
    const after = countLive(summary, 9);
    expect(after).toEqual({ unread: 2, newestId: 9 });
    expect(countLive(after, 9)).toBe(after); // the same event replayed after a reconnect
    expect(countLive(after, 8)).toBe(after); // older than what the count includes
  });

  it("prepends a live notification to the first page once, unread", () => {
    const page = pageOf([note(3)]);
    const live = { id: 4, kind: "price_below", title: "ETH below 3,000", body: "", data: {}, created_at: "2026-12-05T12:00:00Z" };
    const next = prependLive(page, live);
    expect(next.items.map((n) => n.id)).toEqual([4, 3]);
    expect(next.items[0]?.read_at).toBeNull();
    expect([next.unread, next.total]).toEqual([2, 2]);
    expect(prependLive(next, live)).toBe(next);
  });

  it("marks one or all read and keeps the count with them", () => {
    const page = pageOf([note(3), note(2), note(1, true)], 10);
    const one = markRead(page, 2, "2026-12-05T13:00:00Z");
    expect(one.unread).toBe(1);
    expect(one.items.find((n) => n.id === 2)?.read_at).toBe("2026-12-05T13:00:00Z");
    expect(one.items.find((n) => n.id === 3)?.read_at).toBeNull();
    expect(markRead(one, 2).unread).toBe(1); // already read: nothing changes
    const all = markRead(page, null);
    expect(all.unread).toBe(0);
    expect(all.items.every((n) => n.read_at !== null)).toBe(true);
    expect(all.total).toBe(10);
  });
});

describe("parseLive", () => {
  it("reads the stream's notification and refuses anything else", () => {
    expect(parseLive('{"id":12,"user_id":"u","kind":"price_above","title":"BTC above","body":"b","data":{"alert_id":"a"},"created_at":"2026-12-05T10:00:00+00:00"}')).toEqual({
      id: 12,
      kind: "price_above",
      title: "BTC above",
      body: "b",
      data: { alert_id: "a" },
      created_at: "2026-12-05T10:00:00+00:00",
    });
    expect(parseLive("not json")).toBeNull();
    expect(parseLive('{"title":"no id"}')).toBeNull();
    expect(parseLive("null")).toBeNull();
  });
});

describe("toast queue", () => {
  const toast = (id: number) => ({ id, title: `T${id}`, body: "" });
  it("shows each notification once, newest last, at most MAX_TOASTS", () => {
    let toasts = pushToast([], toast(1));
    toasts = pushToast(toasts, toast(1));
    expect(toasts.map((t) => t.id)).toEqual([1]);
    for (let id = 2; id <= MAX_TOASTS + 2; id += 1) toasts = pushToast(toasts, toast(id));
    expect(toasts).toHaveLength(MAX_TOASTS);
    expect(toasts.at(-1)?.id).toBe(MAX_TOASTS + 2);
    expect(toasts[0]?.id).toBe(3);
  });

  it("dismisses one toast", () => {
    expect(dismissToast([toast(1), toast(2)], 1).map((t) => t.id)).toEqual([2]);
  });
});

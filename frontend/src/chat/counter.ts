import { MAX_MESSAGE_CHARS } from "./queries";

/** The counter appears from 80 % of the limit; over the limit the question cannot be sent. */
export function counterState(length: number, limit = MAX_MESSAGE_CHARS): { visible: boolean; over: boolean; text: string } {
  return {
    visible: length >= Math.floor(limit * 0.8),
    over: length > limit,
    text: `${length.toLocaleString("en-US")} / ${limit.toLocaleString("en-US")}`,
  };
}

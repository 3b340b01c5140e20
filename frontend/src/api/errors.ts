// Sage's error body {"error": {"code", "message", "details"}} as an Error.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
    readonly details: readonly unknown[] = [],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string; details?: unknown };
}

export async function errorFrom(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page
  }
  return toApiError(response, body);
}

export function toApiError(response: Response, parsed: unknown): ApiError {
  const body = (typeof parsed === "object" ? parsed : null) as ErrorBody | null;
  const retry = Number(response.headers.get("Retry-After"));
  const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
  const details = Array.isArray(body?.error?.details) ? (body.error.details as unknown[]) : [];
  return new ApiError(response.status, body?.error?.code ?? "http_error", message, Number.isFinite(retry) && retry > 0 ? retry : null, details);
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    return error.retryAfter ? `${error.message} (try again in ${error.retryAfter} s)` : error.message;
  }
  if (error instanceof TypeError) return "Sage is not reachable; check your connection.";
  return error instanceof Error ? error.message : String(error);
}

/** A text field of a submitted form ("" when absent or a file). */
export function field(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === "string" ? value : "";
}

import { describe, expect, it } from "vitest";
import type { Block } from "./conversation";
import { egressRefusal, hasDemoNotice, modelAdvice, quietBlocks } from "./failures";

describe("model API errors", () => {
  it("says a 401 is the server's key and where it is set", () => {
    const advice = modelAdvice("model_api_error", "Failed to authenticate. API Error: 401 {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\"}}");
    expect(advice?.title).toBe("The model API refused the key");
    expect(advice?.advice).toContain("ANTHROPIC_API_KEY");
  });

  it("reads “Invalid API key” as a 401 too", () => {
    expect(modelAdvice("model_api_error", "Invalid API key · Please run /login")?.title).toBe("The model API refused the key");
  });

  it("tells an overloaded API from a rate limit", () => {
    expect(modelAdvice("model_api_error", "API Error: 529 overloaded")?.title).toBe("The model API is overloaded");
    expect(modelAdvice("turn_failed", "API Error: 429 rate_limit_error")?.title).toBe("The model API is rate-limiting this server");
  });

  it("leaves other errors alone", () => {
    expect(modelAdvice("sandbox_error", "API Error: 401")).toBeNull();
    expect(modelAdvice("model_api_error", "something odd")).toBeNull();
  });
});

describe("egress refusals", () => {
  it("finds the proxy's own words and the host they name", () => {
    expect(egressRefusal("Bash", { command: "curl http://example.com" }, "agentbox: example.com:80 is not on this sandbox's allow-list")).toEqual({ host: "example.com:80" });
  });

  it("reads curl's exit 56 after a refused CONNECT, naming the command's host", () => {
    const output = "Exit code 56\ncurl: (56) CONNECT tunnel failed, response 403";
    expect(egressRefusal("Bash", { command: "curl -fsS https://pypi.org/simple/" }, output)).toEqual({ host: "pypi.org" });
  });

  it("reads a bare exit 56 of a curl as a refusal", () => {
    expect(egressRefusal("Bash", { command: "curl -s https://example.org" }, "Exit code 56")).toEqual({ host: "example.org" });
  });

  it("leaves other failures alone", () => {
    expect(egressRefusal("Bash", { command: "make" }, "Exit code 56")).toBeNull();
    expect(egressRefusal("Bash", { command: "curl https://x.org" }, "Exit code 6\ncurl: (6) Could not resolve host")).toBeNull();
    expect(egressRefusal("Bash", { command: "curl https://x.org" }, null)).toBeNull();
  });
});

const retry = (seq: number, attempt: number): Block => ({ kind: "system", seq, subtype: "api_retry", details: { attempt, max_retries: 10 } });
const demo = (seq: number): Block => ({ kind: "system", seq, subtype: "demo", details: { text: "Demo mode" } });

describe("quiet blocks", () => {
  it("keeps only the latest of consecutive retries", () => {
    const text: Block = { kind: "text", seq: 4, text: "hi", parent: null };
    expect(quietBlocks([retry(1, 1), retry(2, 2), retry(3, 3), text], false)).toEqual([retry(3, 3), text]);
  });

  it("keeps retries apart when something came between them", () => {
    const text: Block = { kind: "text", seq: 2, text: "hi", parent: null };
    expect(quietBlocks([retry(1, 1), text, retry(3, 1)], false)).toEqual([retry(1, 1), text, retry(3, 1)]);
  });

  it("shows the demo notice once per chat", () => {
    expect(quietBlocks([demo(1)], false)).toEqual([demo(1)]);
    expect(quietBlocks([demo(1)], true)).toEqual([]);
    expect(hasDemoNotice([demo(1)])).toBe(true);
    expect(hasDemoNotice([retry(1, 1)])).toBe(false);
  });
});

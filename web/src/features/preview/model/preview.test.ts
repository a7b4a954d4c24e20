import { describe, expect, it } from "vitest";
import { absoluteLink, pathOf, portTitle, previewAddress, previewRoot } from "./preview";

describe("preview links", () => {
  it("are made absolute on agentbox's origin when relative, and kept when they have an origin", () => {
    expect(absoluteLink("/preview/c/8000/__agentbox_preview/auth?token=t", "http://a.example")).toBe(
      "http://a.example/preview/c/8000/__agentbox_preview/auth?token=t",
    );
    expect(absoluteLink("https://p-8000-c.p.example/__agentbox_preview/auth?token=t", "http://a.example")).toBe(
      "https://p-8000-c.p.example/__agentbox_preview/auth?token=t",
    );
  });

  it("lead to the preview's root", () => {
    expect(previewRoot("http://a.example/preview/c/8000/__agentbox_preview/auth?token=t")).toBe("http://a.example/preview/c/8000/");
    expect(previewRoot("https://p-8000-c.p.example/__agentbox_preview/auth?token=t")).toBe("https://p-8000-c.p.example/");
  });
});

describe("the path bar", () => {
  const root = "http://a.example/preview/c/8000/";

  it("names addresses below the preview's root", () => {
    expect(previewAddress(root, "/")).toBe(root);
    expect(previewAddress(root, "about?x=1#top")).toBe(`${root}about?x=1#top`);
    expect(previewAddress(root, "  /a/b/ ")).toBe(`${root}a/b/`);
    expect(pathOf(root, `${root}a/b?c=d`)).toBe("/a/b?c=d");
    expect(pathOf(root, "http://elsewhere.example/")).toBe("/");
  });

  it("never leaves it", () => {
    expect(previewAddress(root, "/../../api/v1/auth/me")).toBe(`${root}api/v1/auth/me`);
    expect(previewAddress(root, "//evil.example/x")).toBe(`${root}evil.example/x`);
    expect(previewAddress(root, "javascript:alert(1)")).toBe(root);
    expect(previewAddress(root, "https://evil.example/")).toBe(root);
    // A query may hold anything: it is the app's.
    expect(previewAddress(root, "/search?q=../x")).toBe(`${root}search?q=../x`);
  });

  it("names ports by number and process", () => {
    expect(portTitle({ port: 8000, process: "python3" })).toBe("8000 · python3");
    expect(portTitle({ port: 3000, process: null })).toBe("3000");
  });
});

import { describe, expect, it } from "vitest";
import { MAX_TERMINALS, tabUpdates, type ChatTerminals } from "./tabs";

const empty: ChatTerminals = { tabs: [], active: null, counter: 0 };

describe("terminal tabs", () => {
  it("adds numbered tabs up to the server's limit and selects the new one", () => {
    let state = empty;
    for (let i = 0; i < MAX_TERMINALS + 2; i += 1) state = tabUpdates.add(state);
    expect(state.tabs).toHaveLength(MAX_TERMINALS);
    expect(state.tabs.map((t) => t.title).slice(0, 2)).toEqual(["Terminal 1", "Terminal 2"]);
    expect(state.active).toBe(`t${MAX_TERMINALS}`);
  });

  it("moves the selection to a neighbour when the selected tab closes, and never reuses a number", () => {
    let state = tabUpdates.add(tabUpdates.add(tabUpdates.add(empty)));
    state = tabUpdates.select(state, "t2");
    state = tabUpdates.close(state, "t2");
    expect(state.tabs.map((t) => t.key)).toEqual(["t1", "t3"]);
    expect(state.active).toBe("t3");
    state = tabUpdates.close(state, "t3");
    expect(state.active).toBe("t1");
    state = tabUpdates.add(state);
    expect(state.tabs.map((t) => t.title)).toEqual(["Terminal 1", "Terminal 4"]);
    state = tabUpdates.close(tabUpdates.close(state, "t1"), "t4");
    expect(state).toMatchObject({ tabs: [], active: null });
    expect(tabUpdates.close(state, "missing")).toBe(state);
  });

  it("remembers the shell of each tab", () => {
    let state = tabUpdates.add(tabUpdates.add(empty));
    state = tabUpdates.setSession(state, "t1", "s-1");
    expect(state.tabs.map((t) => t.sessionId)).toEqual(["s-1", null]);
    state = tabUpdates.setSession(state, "t1", null);
    expect(state.tabs[0]?.sessionId).toBeNull();
  });
});

// Vitest set-up for component tests: jsdom plus automatic clean-up between tests.
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

afterEach(() => cleanup());

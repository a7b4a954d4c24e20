// The text editor: CodeMirror 6 with line numbers, history, search and the file's language.
// This module is loaded only when a file is first opened, and each language only when a file
// needs it, so neither weighs on the first visit. On a phone long lines wrap, since there is no
// room to scroll sideways through them.
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, foldGutter, foldKeymap, HighlightStyle, indentOnInput, StreamLanguage, syntaxHighlighting } from "@codemirror/language";
import { highlightSelectionMatches, search, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState, type Extension, type Text } from "@codemirror/state";
import {
  crosshairCursor,
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
} from "@codemirror/view";
import { tags } from "@lezer/highlight";
import { forwardRef, useEffect, useImperativeHandle, useRef } from "react";
import { PHONE_QUERY } from "@/shared/lib/media";
import type { LanguageId } from "../model/document";

/** What the file panel can ask of the editor. */
export interface CodeEditorHandle {
  /** The text now, and a token for `markSaved` once that text is stored. */
  snapshot(): { text: string; doc: Text };
  /** Declares `doc` saved: the editor is clean while its text equals it. */
  markSaved(doc: Text): void;
  /** Replaces the whole text (the file changed elsewhere and is reloaded). */
  replace(text: string): void;
  focus(): void;
}

async function loadLanguage(id: LanguageId): Promise<Extension> {
  switch (id) {
    case "javascript":
      return (await import("@codemirror/lang-javascript")).javascript();
    case "jsx":
      return (await import("@codemirror/lang-javascript")).javascript({ jsx: true });
    case "typescript":
      return (await import("@codemirror/lang-javascript")).javascript({ typescript: true });
    case "tsx":
      return (await import("@codemirror/lang-javascript")).javascript({ typescript: true, jsx: true });
    case "json":
      return (await import("@codemirror/lang-json")).json();
    case "python":
      return (await import("@codemirror/lang-python")).python();
    case "rust":
      return (await import("@codemirror/lang-rust")).rust();
    case "go":
      return (await import("@codemirror/lang-go")).go();
    case "markdown":
      return (await import("@codemirror/lang-markdown")).markdown();
    case "html":
      return (await import("@codemirror/lang-html")).html();
    case "css":
      return (await import("@codemirror/lang-css")).css();
    case "yaml":
      return (await import("@codemirror/lang-yaml")).yaml();
    case "sql":
      return (await import("@codemirror/lang-sql")).sql();
    case "cpp":
      return (await import("@codemirror/lang-cpp")).cpp();
    case "java":
      return (await import("@codemirror/lang-java")).java();
    case "xml":
      return (await import("@codemirror/lang-xml")).xml();
    case "shell":
      return StreamLanguage.define((await import("@codemirror/legacy-modes/mode/shell")).shell);
    case "toml":
      return StreamLanguage.define((await import("@codemirror/legacy-modes/mode/toml")).toml);
    case "dockerfile":
      return StreamLanguage.define((await import("@codemirror/legacy-modes/mode/dockerfile")).dockerFile);
  }
}

// Colours come from CSS variables, so the editor follows the light and dark themes by itself.
const highlight = HighlightStyle.define([
  { tag: [tags.keyword, tags.controlKeyword, tags.moduleKeyword, tags.operatorKeyword], color: "var(--cm-keyword)" },
  { tag: [tags.string, tags.special(tags.string), tags.regexp], color: "var(--cm-string)" },
  { tag: [tags.number, tags.bool, tags.null, tags.atom], color: "var(--cm-number)" },
  { tag: [tags.comment, tags.lineComment, tags.blockComment], color: "var(--cm-comment)", fontStyle: "italic" },
  { tag: [tags.function(tags.variableName), tags.function(tags.propertyName), tags.definition(tags.function(tags.variableName))], color: "var(--cm-function)" },
  { tag: [tags.typeName, tags.className, tags.namespace], color: "var(--cm-type)" },
  { tag: [tags.propertyName, tags.attributeName], color: "var(--cm-property)" },
  { tag: [tags.tagName, tags.heading], color: "var(--cm-tag)", fontWeight: "600" },
  { tag: tags.link, textDecoration: "underline" },
  { tag: tags.emphasis, fontStyle: "italic" },
  { tag: tags.strong, fontWeight: "700" },
  { tag: tags.invalid, color: "var(--bad)" },
]);

const look = EditorView.theme({
  "&": { height: "100%", fontSize: "13px", backgroundColor: "var(--bg)", color: "var(--fg)" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.5" },
  ".cm-gutters": { backgroundColor: "var(--bg-soft)", color: "var(--fg-soft)", borderRight: "1px solid var(--border)" },
  ".cm-activeLine": { backgroundColor: "color-mix(in srgb, var(--accent) 6%, transparent)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--bg-sunk)" },
  "&.cm-focused .cm-cursor": { borderLeftColor: "var(--fg)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "color-mix(in srgb, var(--accent) 25%, transparent) !important",
  },
  ".cm-panels": { backgroundColor: "var(--bg-soft)", color: "var(--fg)" },
  ".cm-searchMatch": { backgroundColor: "color-mix(in srgb, var(--warn) 30%, transparent)" },
});

const CodeEditor = forwardRef<
  CodeEditorHandle,
  { text: string; language: LanguageId | null; label: string; onDirty: (dirty: boolean) => void; onSave: () => void }
>(function CodeEditor({ text, language, label, onDirty, onSave }, ref) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const saved = useRef<Text | null>(null);
  const dirty = useRef(false);
  const callbacks = useRef({ onDirty, onSave });
  callbacks.current = { onDirty, onSave };

  const report = (doc: Text) => {
    const now = saved.current ? !doc.eq(saved.current) : false;
    if (now !== dirty.current) {
      dirty.current = now;
      callbacks.current.onDirty(now);
    }
  };

  useImperativeHandle(ref, () => ({
    snapshot: () => {
      const doc = view.current?.state.doc;
      return doc ? { text: doc.toString(), doc } : { text: "", doc: EditorState.create().doc };
    },
    markSaved: (doc) => {
      saved.current = doc;
      if (view.current) report(view.current.state.doc);
    },
    replace: (next) => {
      const current = view.current;
      if (!current) return;
      current.dispatch({ changes: { from: 0, to: current.state.doc.length, insert: next } });
      saved.current = current.state.doc;
      report(current.state.doc);
    },
    focus: () => view.current?.focus(),
  }));

  // The editor is made once per opened file (the parent keys it by path).
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const languageSlot = new Compartment();
    const wrapSlot = new Compartment();
    const phone = window.matchMedia?.(PHONE_QUERY);
    const wrapping = () => (phone?.matches ? EditorView.lineWrapping : []);
    const state = EditorState.create({
      doc: text,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        foldGutter(),
        drawSelection(),
        EditorState.allowMultipleSelections.of(true),
        indentOnInput(),
        syntaxHighlighting(highlight),
        bracketMatching(),
        closeBrackets(),
        rectangularSelection(),
        crosshairCursor(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        search({ top: true }),
        keymap.of([
          { key: "Mod-s", preventDefault: true, run: () => (callbacks.current.onSave(), true) },
          ...closeBracketsKeymap,
          ...defaultKeymap,
          ...searchKeymap,
          ...historyKeymap,
          ...foldKeymap,
          indentWithTab,
        ]),
        look,
        languageSlot.of([]),
        wrapSlot.of(wrapping()),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) report(update.state.doc);
        }),
      ],
    });
    const editor = new EditorView({ state, parent: element });
    view.current = editor;
    const rewrap = () => editor.dispatch({ effects: wrapSlot.reconfigure(wrapping()) });
    phone?.addEventListener("change", rewrap);
    saved.current = state.doc;
    dirty.current = false;
    let cancelled = false;
    if (language) {
      loadLanguage(language)
        .then((extension) => {
          if (!cancelled) editor.dispatch({ effects: languageSlot.reconfigure(extension) });
        })
        .catch(() => {
          // Without its language the file is still editable, only not highlighted.
        });
    }
    return () => {
      cancelled = true;
      phone?.removeEventListener("change", rewrap);
      editor.destroy();
      view.current = null;
    };
    // The text and language are the file's as opened; later changes go through the handle.
  }, []);

  return <div className="code-editor" ref={host} />;
});

export default CodeEditor;

//! Prompt markers such as `[[think]]` or `[[write:hello.txt:hi]]`, and how they compile to a
//! [`Script`].
//!
//! Markers let a test, a benchmark or a demo user say in the prompt itself what the mock model
//! should do. Several markers compose: thinking goes first, tool calls follow in marker order
//! (one step each), the final text comes last, and `[[slow]]`, `[[error]]` and
//! `[[disconnect]]` change how the steps are delivered. Text that looks like a marker but has
//! an unknown name or an unusable argument is left alone as ordinary prompt text.

use serde_json::{Value, json};

use crate::script::{Block, Script, Step, StepError};

/// The thinking text of a bare `[[think]]`.
pub const DEFAULT_THINKING: &str = "Considering the request carefully.";

/// Upper bounds that keep a typo in a prompt from making the mock allocate or wait forever.
const MAX_STEPS: u32 = 1000;
const MAX_LONG_BYTES: usize = 64 * 1024 * 1024;
const MAX_SLOW_MS: u64 = 600_000;

/// One marker found in a prompt.
#[derive(Clone, Debug, PartialEq)]
pub enum Marker {
    /// `[[think]]` or `[[think:TEXT]]`.
    Think(Option<String>),
    /// `[[text:TEXT]]`: the final reply text.
    Text(String),
    /// `[[write:PATH:CONTENT]]`: a Bash call that writes CONTENT to PATH.
    Write {
        /// The file to write, relative to the CLI's working directory.
        path: String,
        /// What to write into it.
        content: String,
    },
    /// `[[bash:COMMAND]]`: a Bash call running COMMAND.
    Bash(String),
    /// `[[tool:NAME:JSON]]`: any tool call.
    Tool {
        /// The tool's name.
        name: String,
        /// The tool's input object.
        input: Value,
    },
    /// `[[sleep:N]]`: a Bash call that takes N seconds.
    Sleep(String),
    /// `[[steps:N]]`: N Bash calls `echo step-i`.
    Steps(u32),
    /// `[[ask]]`: an `AskUserQuestion` call.
    Ask,
    /// `[[exitplan]]`: an `ExitPlanMode` call.
    ExitPlan,
    /// `[[error:STATUS]]` or `[[error:STATUS:N]]`: fail every request, or the first N.
    Error {
        /// The HTTP status.
        status: u16,
        /// How many requests fail; all of them when absent.
        times: Option<u32>,
    },
    /// `[[slow:MS]]`: MS milliseconds between the events of every streamed reply.
    Slow(u64),
    /// `[[disconnect]]`: the first request is cut mid-stream.
    Disconnect,
    /// `[[long:N]]`: the final text is exactly N bytes long.
    Long(usize),
    /// `[[scenario:NAME]]`: the script NAME of the scenario file.
    Scenario(String),
}

/// Finds every marker in `prompt`, in order of appearance.
pub fn parse_markers(prompt: &str) -> Vec<Marker> {
    let mut markers = Vec::new();
    let mut rest = prompt;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        match parse_one(after) {
            Some((marker, consumed)) => {
                markers.push(marker);
                rest = &after[consumed..];
            }
            // Moving on by one byte only (`[` is ASCII) lets `[[[think]]` still be found.
            None => rest = &rest[start + 1..],
        }
    }
    markers
}

/// Parses one marker from the text right after its `[[`, returning it and how many bytes it
/// used, including the closing `]]`.
fn parse_one(text: &str) -> Option<(Marker, usize)> {
    let name_len = text.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(text.len());
    let name = &text[..name_len];
    let tail = &text[name_len..];
    if tail.starts_with("]]") {
        return marker_without_argument(name).map(|marker| (marker, name_len + 2));
    }
    let argument_text = tail.strip_prefix(':')?;
    let used = |end: usize| name_len + 1 + end + 2;
    if name == "tool" {
        // A JSON input may itself contain `]]`, so take the first closing `]]` after which the
        // argument is a tool name and a valid JSON object.
        return closing_positions(argument_text)
            .find_map(|end| parse_tool(&argument_text[..end]).map(|marker| (marker, used(end))));
    }
    let end = argument_text.find("]]")?;
    marker_with_argument(name, &argument_text[..end]).map(|marker| (marker, used(end)))
}

fn closing_positions(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.match_indices("]]").map(|(index, _)| index)
}

fn marker_without_argument(name: &str) -> Option<Marker> {
    match name {
        "think" => Some(Marker::Think(None)),
        "ask" => Some(Marker::Ask),
        "exitplan" => Some(Marker::ExitPlan),
        "disconnect" => Some(Marker::Disconnect),
        _ => None,
    }
}

fn marker_with_argument(name: &str, argument: &str) -> Option<Marker> {
    match name {
        "think" => Some(Marker::Think(Some(argument.to_owned()))),
        "text" => Some(Marker::Text(argument.to_owned())),
        "write" => {
            let (path, content) = argument.split_once(':')?;
            (!path.is_empty())
                .then(|| Marker::Write { path: path.to_owned(), content: content.to_owned() })
        }
        "bash" => (!argument.trim().is_empty()).then(|| Marker::Bash(argument.to_owned())),
        "sleep" => {
            let seconds = argument.trim();
            let valid = seconds.parse::<f64>().is_ok_and(|value| value.is_finite() && value >= 0.0);
            valid.then(|| Marker::Sleep(seconds.to_owned()))
        }
        "steps" => argument
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|count| (1..=MAX_STEPS).contains(count))
            .map(Marker::Steps),
        "error" => {
            let (status, times) = match argument.split_once(':') {
                Some((status, times)) => (status, Some(times.trim().parse::<u32>().ok()?)),
                None => (argument, None),
            };
            let status = status.trim().parse::<u16>().ok().filter(|s| (400..=599).contains(s))?;
            Some(Marker::Error { status, times })
        }
        "slow" => {
            argument.trim().parse::<u64>().ok().filter(|ms| *ms <= MAX_SLOW_MS).map(Marker::Slow)
        }
        "long" => argument
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|bytes| *bytes <= MAX_LONG_BYTES)
            .map(Marker::Long),
        "scenario" => {
            let name = argument.trim();
            (!name.is_empty()).then(|| Marker::Scenario(name.to_owned()))
        }
        _ => None,
    }
}

fn parse_tool(argument: &str) -> Option<Marker> {
    let (name, json_text) = argument.split_once(':')?;
    let name = name.trim();
    let input: Value = serde_json::from_str(json_text).ok()?;
    (!name.is_empty() && input.is_object()).then(|| Marker::Tool { name: name.to_owned(), input })
}

/// Quotes `text` for a POSIX shell, always, in single quotes.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Quotes `text` for a POSIX shell only when it has characters a shell would interpret, so
/// plain file names stay readable in the transcript.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain { text.to_owned() } else { shell_quote(text) }
}

fn bash_step(command: String, description: &str) -> Step {
    Step::tool_use("Bash", json!({"command": command, "description": description}))
}

/// The `AskUserQuestion` input of `[[ask]]`.
pub fn ask_input() -> Value {
    json!({"questions": [{
        "question": "Which color?",
        "header": "Color",
        "multiSelect": false,
        "options": [
            {"label": "red", "description": "warm"},
            {"label": "blue", "description": "cool"},
        ],
    }]})
}

/// The `ExitPlanMode` input of `[[exitplan]]`.
pub fn exit_plan_input() -> Value {
    json!({"plan": "1. Write plan.txt\n2. Report back"})
}

/// The first 40 characters of the prompt, quoted back in default replies so a reader can tell
/// which prompt a reply belongs to.
fn prompt_head(prompt: &str) -> String {
    prompt.chars().take(40).collect()
}

/// The final text when the prompt has no `[[text]]` marker.
pub fn default_final_text(prompt: &str, had_tools: bool) -> String {
    let head = prompt_head(prompt);
    if had_tools {
        format!("Done. (after tool) ok: {head}")
    } else {
        format!("Done. (scripted reply) ok: {head}")
    }
}

/// Pads (or cuts) `text` to exactly `bytes` bytes with readable ASCII filler, keeping UTF-8
/// valid, for tests of very long output lines.
pub fn long_text(text: &str, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes);
    for c in text.chars() {
        if out.len() + c.len_utf8() > bytes {
            break;
        }
        out.push(c);
    }
    const FILLER: &str = " lorem ipsum dolor sit amet, scripted reply padding";
    while out.len() < bytes {
        let room = bytes - out.len();
        out.push_str(&FILLER[..room.min(FILLER.len())]);
    }
    out
}

/// Why a prompt's markers could not be turned into a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// `[[scenario:NAME]]` names a script the scenario file does not have.
    UnknownScenario(String),
}

/// Turns a prompt's markers into a script, or returns `Ok(None)` when the prompt has none.
///
/// `scenario` looks up the scripts of `[[scenario:NAME]]`. A scenario script replaces the
/// steps the other markers would build; `[[think]]`, `[[slow]]`, `[[error]]` and
/// `[[disconnect]]` still apply to it.
pub fn compile(
    prompt: &str,
    scenario: impl Fn(&str) -> Option<Script>,
) -> Result<Option<Script>, CompileError> {
    let markers = parse_markers(prompt);
    if markers.is_empty() {
        return Ok(None);
    }
    let mut thinking = Vec::new();
    let mut tool_steps = Vec::new();
    let mut final_text = None;
    let mut long = None;
    let mut slow = None;
    let mut error = None;
    let mut disconnect = false;
    let mut scenario_name = None;
    for marker in markers {
        match marker {
            Marker::Think(text) => {
                thinking.push(Block::thinking(text.unwrap_or_else(|| DEFAULT_THINKING.into())));
            }
            Marker::Text(text) => final_text = Some(text),
            Marker::Write { path, content } => tool_steps.push(Step::new(vec![
                Block::text("Writing the file now."),
                Block::tool_use(
                    "Bash",
                    json!({
                        "command": format!(
                            "printf '%s' {} > {} && echo written",
                            shell_quote(&content),
                            shell_word(&path)
                        ),
                        "description": "write file",
                    }),
                ),
            ])),
            Marker::Bash(command) => tool_steps.push(bash_step(command, "run command")),
            Marker::Tool { name, input } => tool_steps.push(Step::tool_use(name, input)),
            Marker::Sleep(seconds) => tool_steps.push(bash_step(
                format!("python3 -c 'import time; time.sleep({seconds})' && echo slept"),
                "wait",
            )),
            Marker::Steps(count) => tool_steps.extend(
                (1..=count).map(|i| bash_step(format!("echo step-{i}"), &format!("step {i}"))),
            ),
            Marker::Ask => tool_steps.push(Step::tool_use("AskUserQuestion", ask_input())),
            Marker::ExitPlan => tool_steps.push(Step::tool_use("ExitPlanMode", exit_plan_input())),
            Marker::Error { status, times } => error = Some((status, times)),
            Marker::Slow(ms) => slow = Some(ms),
            Marker::Disconnect => disconnect = true,
            Marker::Long(bytes) => long = Some(bytes),
            Marker::Scenario(name) => scenario_name = Some(name),
        }
    }

    let mut steps = match scenario_name {
        Some(name) => match scenario(&name) {
            Some(script) => script.steps,
            None => return Err(CompileError::UnknownScenario(name)),
        },
        None => {
            let text =
                final_text.unwrap_or_else(|| default_final_text(prompt, !tool_steps.is_empty()));
            let text = match long {
                Some(bytes) => long_text(&text, bytes),
                None => text,
            };
            let mut steps = tool_steps;
            steps.push(Step::text(text));
            steps
        }
    };
    if steps.is_empty() {
        steps.push(Step::default());
    }
    steps[0].blocks.splice(0..0, thinking);
    if let Some(ms) = slow {
        for step in &mut steps {
            step.delay_ms = Some(ms);
        }
    }
    match error {
        // Failing every request of the first step fails every request of the prompt, since
        // the conversation can never get past it; a counted failure belongs to the first step,
        // which is where the first requests land.
        Some((status, None)) => {
            for step in &mut steps {
                step.error = Some(StepError::new(status));
            }
        }
        Some((status, Some(times))) => steps[0].error = Some(StepError::new(status).times(times)),
        None => {}
    }
    if disconnect {
        steps[0].disconnect = true;
    }
    Ok(Some(Script::new(steps)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_scenarios(_: &str) -> Option<Script> {
        None
    }

    fn compiled(prompt: &str) -> Script {
        compile(prompt, no_scenarios).unwrap().unwrap()
    }

    fn tool_input(step: &Step) -> &Value {
        step.blocks
            .iter()
            .find_map(|block| match block {
                Block::ToolUse { input, .. } => Some(input),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn finds_markers_in_order() {
        let markers = parse_markers("[[think]] a [[write:hello.txt:hi]] b [[ask]] [[exitplan]]");
        assert_eq!(
            markers,
            vec![
                Marker::Think(None),
                Marker::Write { path: "hello.txt".into(), content: "hi".into() },
                Marker::Ask,
                Marker::ExitPlan,
            ]
        );
    }

    #[test]
    fn arguments_may_contain_colons() {
        assert_eq!(parse_markers("[[bash:echo a:b:c]]"), vec![Marker::Bash("echo a:b:c".into())]);
        assert_eq!(
            parse_markers("[[write:notes.txt:k: v]]"),
            vec![Marker::Write { path: "notes.txt".into(), content: "k: v".into() }]
        );
        assert_eq!(
            parse_markers("[[think:step: one]]"),
            vec![Marker::Think(Some("step: one".into()))]
        );
    }

    #[test]
    fn tool_json_may_contain_closing_brackets() {
        assert_eq!(
            parse_markers(r#"[[tool:Grep:{"pattern":"a","x":[[1]]}]] tail"#),
            vec![Marker::Tool { name: "Grep".into(), input: json!({"pattern": "a", "x": [[1]]}) }]
        );
    }

    #[test]
    fn invalid_markers_are_plain_text() {
        assert!(parse_markers("[[nope]] [[sleep:soon]] [[error:200]] [[steps:0]] [[x").is_empty());
        assert!(parse_markers("[[tool:Bash:not json]]").is_empty());
        assert!(parse_markers("[[Think]]").is_empty());
        assert_eq!(parse_markers("[[[think]]"), vec![Marker::Think(None)]);
    }

    #[test]
    fn error_markers_carry_status_and_count() {
        assert_eq!(
            parse_markers("[[error:500]] [[error:529:2]]"),
            vec![
                Marker::Error { status: 500, times: None },
                Marker::Error { status: 529, times: Some(2) },
            ]
        );
    }

    #[test]
    fn no_markers_compile_to_none() {
        assert_eq!(compile("just chatting [[", no_scenarios), Ok(None));
    }

    #[test]
    fn think_and_write_match_the_recorded_session() {
        let prompt = "[[think]] [[write:hello.txt:hi]] write a file";
        let script = compiled(prompt);
        assert_eq!(script.steps.len(), 2);
        assert_eq!(
            script.steps[0].blocks,
            vec![
                Block::thinking(DEFAULT_THINKING),
                Block::text("Writing the file now."),
                Block::tool_use(
                    "Bash",
                    json!({
                        "command": "printf '%s' 'hi' > hello.txt && echo written",
                        "description": "write file"
                    })
                ),
            ]
        );
        assert_eq!(script.steps[0].effective_stop_reason(), "tool_use");
        assert_eq!(
            script.steps[1].blocks,
            vec![Block::text("Done. (after tool) ok: [[think]] [[write:hello.txt:hi]] write a")]
        );
        assert_eq!(script.steps[1].effective_stop_reason(), "end_turn");
    }

    #[test]
    fn write_quotes_content_and_odd_paths() {
        let script = compiled("[[write:my file.txt:it's]]");
        assert_eq!(
            tool_input(&script.steps[0])["command"],
            r#"printf '%s' 'it'\''s' > 'my file.txt' && echo written"#
        );
    }

    #[test]
    fn steps_sleep_ask_and_exitplan_become_tool_steps_in_order() {
        let script = compiled("[[steps:2]] [[sleep:30]] [[ask]] [[exitplan]] go");
        let commands: Vec<&Value> = script.steps[..4].iter().map(tool_input).collect();
        assert_eq!(commands[0]["command"], "echo step-1");
        assert_eq!(commands[1]["command"], "echo step-2");
        assert_eq!(
            commands[2]["command"],
            "python3 -c 'import time; time.sleep(30)' && echo slept"
        );
        assert_eq!(*commands[3], ask_input());
        assert_eq!(*tool_input(&script.steps[4]), exit_plan_input());
        assert!(
            matches!(&script.steps[4].blocks[0], Block::ToolUse { name, .. } if name == "ExitPlanMode")
        );
        assert_eq!(script.steps.len(), 6);
        assert_eq!(
            script.steps[5].blocks,
            vec![Block::text("Done. (after tool) ok: [[steps:2]] [[sleep:30]] [[ask]] [[exitp")]
        );
    }

    #[test]
    fn text_marker_sets_the_final_reply() {
        let script = compiled("[[think:hmm]] [[text:All good.]]");
        assert_eq!(
            script.steps,
            vec![Step::new(vec![Block::thinking("hmm"), Block::text("All good.")])]
        );
    }

    #[test]
    fn reply_without_tools_says_it_is_scripted() {
        let script = compiled("[[think]] hello there");
        assert_eq!(
            script.steps[0].blocks[1],
            Block::text("Done. (scripted reply) ok: [[think]] hello there")
        );
    }

    #[test]
    fn long_text_has_the_exact_length() {
        let script = compiled("[[long:5000]] x");
        let Block::Text { text } = &script.steps[0].blocks[0] else { panic!("not text") };
        assert_eq!(text.len(), 5000);
        assert!(text.starts_with("Done. (scripted reply) ok: [[long:5000]] x"));
        assert!(!text.contains('\n'));
        assert_eq!(long_text("héllo", 2), "h ");
        assert_eq!(long_text("abc", 0), "");
    }

    #[test]
    fn delivery_markers_shape_the_steps() {
        let script = compiled("[[slow:25]] [[disconnect]] [[error:529:2]] [[bash:ls]]");
        assert!(script.steps.iter().all(|step| step.delay_ms == Some(25)));
        assert!(script.steps[0].disconnect);
        assert!(!script.steps[1].disconnect);
        assert_eq!(script.steps[0].error, Some(StepError::new(529).times(2)));
        assert_eq!(script.steps[1].error, None);

        let always = compiled("[[error:401]] [[bash:ls]]");
        assert!(always.steps.iter().all(|step| step.error == Some(StepError::new(401))));
        assert_eq!(
            always.steps[0].error.as_ref().unwrap().effective_type(),
            "authentication_error"
        );
    }

    #[test]
    fn scenario_marker_uses_the_named_script() {
        let lookup = |name: &str| (name == "greet").then(|| Script::text("hello from greet"));
        let script = compile("[[scenario:greet]] [[think]]", lookup).unwrap().unwrap();
        assert_eq!(
            script.steps,
            vec![Step::new(vec![
                Block::thinking(DEFAULT_THINKING),
                Block::text("hello from greet")
            ])]
        );
        assert_eq!(
            compile("[[scenario:missing]]", lookup),
            Err(CompileError::UnknownScenario("missing".into()))
        );
    }
}

//! How the commands print: `--json` as the coordinator's JSON, otherwise aligned tables, with
//! colour only on a terminal (and never with `NO_COLOR` set).

use std::io::{IsTerminal as _, Write as _};

use anyhow::anyhow;
use nexus_client::{Accepted, FunctionResponse};
use serde::Serialize;

/// Whether standard output gets colour.
fn coloured() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A colour for a word in a table.
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Quiet,
}

/// `text` in `tone`, when standard output is a terminal.
pub fn paint(text: &str, tone: Tone) -> String {
    if !coloured() {
        return text.to_owned();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "31",
        Tone::Quiet => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The tone of a state or status word.
pub fn tone_of(word: &str) -> Tone {
    match word {
        "active" | "succeeded" | "running" | "queued" => Tone::Good,
        "dead" | "failed" | "error" | "lost" | "suspended" => Tone::Bad,
        _ if word.starts_with('2') || word.starts_with('3') => Tone::Good,
        _ if word.starts_with('4') || word.starts_with('5') => Tone::Bad,
        _ => Tone::Quiet,
    }
}

/// `value` as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `rows` under `headers`, in columns as wide as their widest cell; the column named in
/// `toned` is coloured by [`tone_of`].
pub fn table(headers: &[&str], rows: &[Vec<String>], toned: Option<&str>) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let toned = toned.and_then(|name| headers.iter().position(|header| *header == name));
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            let padding = width.saturating_sub(cell.chars().count());
            let shown = match toned {
                Some(column) if column == index && !cell.is_empty() => paint(cell, tone_of(cell)),
                _ => cell.clone(),
            };
            text.push_str(&shown);
            if index < last {
                text.push_str(&" ".repeat(padding + 2));
            }
        }
        println!("{text}");
    };
    line(headers.iter().map(|header| (*header).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// An optional value as a table cell.
pub fn cell<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// An invocation queued instead of run now: its id, and how to follow it.
pub fn queued(accepted: &Accepted, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(accepted);
    }
    println!("Queued invocation {} ({})", accepted.id, accepted.status);
    println!("Follow it: nexus invocations get {}", accepted.id);
    Ok(())
}

/// A function's answer: as JSON; or its body on standard output as it is (after the status
/// line and headers with `include`), saying on standard error when it is not a success. A
/// 5xx answer fails the command.
pub fn answer(answer: &FunctionResponse, as_json: bool, include: bool) -> anyhow::Result<()> {
    if as_json {
        let headers: Vec<(String, String)> = answer
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        return json(&serde_json::json!({
            "status": answer.status.as_u16(),
            "version": answer.version,
            "headers": headers,
            "body": String::from_utf8_lossy(&answer.body),
        }));
    }
    let mut stdout = std::io::stdout();
    if include {
        writeln!(stdout, "HTTP/1.1 {}", answer.status)?;
        for (name, value) in &answer.headers {
            writeln!(
                stdout,
                "{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            )?;
        }
        writeln!(stdout)?;
    }
    raw(&answer.body)?;
    if !answer.status.is_success() && !include {
        eprintln!(
            "{}",
            paint(
                &format!("the function answered {}", answer.status),
                Tone::Bad
            )
        );
    }
    if answer.status.is_server_error() {
        return Err(anyhow!("the function failed ({})", answer.status));
    }
    Ok(())
}

/// `bytes` on standard output as they are, with a line break after them on a terminal (where
/// the prompt would otherwise start on their last line).
pub fn raw(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    stdout.write_all(bytes)?;
    if stdout.is_terminal() && !bytes.is_empty() && !bytes.ends_with(b"\n") {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

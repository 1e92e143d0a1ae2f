//! `wemp sim chat`: an interactive session as one user.

use std::io::{self, BufRead, Write};

use clap::Parser;
use wemp_proto::Reply;

use super::build::MessageSpec;
use super::{DeliveryVerdict, Simulator, USER_ERROR_BANNER};
use crate::term::Style;

/// The commands of a chat session, for `/help`.
pub const HELP: &str = "\
Type a line to send it as text. Commands:
  /click KEY            menu click (CLICK)
  /view URL             menu link (VIEW)
  /subscribe [SCENE]    follow (through a QR scene when given)
  /unsubscribe          unfollow
  /scan SCENE           scan a parametric QR code (SCAN)
  /location [LAT LON]   share a location (default: Guangzhou)
  /report [LAT LON]     periodic location report (LOCATION event)
  /image /voice /video /shortvideo
  /link URL             share a link
  /event TYPE ARGS…     any event, as in `wemp sim send URL event …`
  /send TYPE ARGS…      any message, as in `wemp sim send URL …`
  /history              the conversation so far
  /help                 this text
  /quit                 leave (end of input works too)";

#[derive(Debug, Parser)]
#[command(name = "/send", no_binary_name = true, disable_help_flag = true)]
struct Line {
    #[command(subcommand)]
    spec: MessageSpec,
}

/// What a chat line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Send this.
    Send(MessageSpec),
    /// Print the history.
    History,
    /// Print the help.
    Help,
    /// Leave.
    Quit,
    /// Nothing (blank line).
    Nothing,
}

/// Splits on whitespace, keeping double-quoted words together.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A chat line that is not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// `/name` is no command.
    #[error("unknown command /{0}; /help lists them")]
    Unknown(String),
    /// The command's arguments are wrong: the first line of what the parser says.
    #[error("{0}")]
    Arguments(String),
}

/// Reads one chat line.
///
/// # Errors
/// [`LineError`]: what is wrong with the command.
pub fn parse_line(line: &str) -> Result<Command, LineError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Command::Nothing);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Send(MessageSpec::text(line)));
    };
    let mut args = words(rest);
    let cmd = args.remove(0);
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let argv: Vec<String> = match cmd.as_str() {
        "quit" | "exit" | "q" => return Ok(Command::Quit),
        "help" | "h" | "?" => return Ok(Command::Help),
        "history" => return Ok(Command::History),
        "click" => [strs(&["event", "click"]), args].concat(),
        "view" => [strs(&["event", "view"]), args].concat(),
        "scan" => [strs(&["event", "scan"]), args].concat(),
        "unsubscribe" => strs(&["event", "unsubscribe"]),
        "subscribe" => match args.first() {
            Some(scene) => strs(&["event", "subscribe", "--scene", scene]),
            None => strs(&["event", "subscribe"]),
        },
        "location" if args.is_empty() => {
            strs(&["location", "23.134521", "113.358803", "--label", "Guangzhou"])
        }
        "report" => [strs(&["event", "location"]), args].concat(),
        "event" => [strs(&["event"]), args].concat(),
        "send" => args,
        "location" | "image" | "voice" | "video" | "shortvideo" | "link" => {
            [vec![cmd.clone()], args].concat()
        }
        other => return Err(LineError::Unknown(other.to_owned())),
    };
    Line::try_parse_from(argv).map(|l| Command::Send(l.spec)).map_err(|e| {
        let text = e.to_string();
        LineError::Arguments(
            text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid command").to_owned(),
        )
    })
}

/// Renders a reply as a chat bubble's text.
pub fn render_reply(reply: &Reply) -> String {
    match reply {
        Reply::None => "(no reply)".into(),
        Reply::Text { content } => content.clone(),
        Reply::Image { media_id } => format!("[image {media_id}]"),
        Reply::Voice { media_id } => format!("[voice {media_id}]"),
        Reply::Video { media_id, title, .. } => {
            format!("[video {media_id}{}]", title.as_deref().map(|t| format!(" \"{t}\"")).unwrap_or_default())
        }
        Reply::Music(m) => format!(
            "[music {}{}]",
            m.title.as_deref().unwrap_or("(untitled)"),
            m.music_url.as_deref().map(|u| format!(" {u}")).unwrap_or_default()
        ),
        Reply::News(articles) => {
            let mut out = format!("[news, {} article(s)]", articles.len());
            for a in articles {
                out.push_str(&format!("\n  • {} — {} <{}>", a.title, a.description, a.url));
            }
            out
        }
        Reply::TransferCustomerService { kf_account } => match kf_account {
            Some(kf) => format!("[transferred to customer service agent {kf}]"),
            None => "[transferred to customer service]".into(),
        },
        other => format!("{other:?}"),
    }
}

/// Runs a session reading `input` and writing to `out` until `/quit` or end of input.
/// Returns how many messages went unanswered (the user saw the error banner).
///
/// # Errors
/// Reading or writing fails.
pub async fn run(
    sim: &Simulator,
    input: impl BufRead,
    out: &mut impl Write,
    style: Style,
) -> io::Result<usize> {
    let mut history: Vec<(String, String)> = Vec::new();
    let mut failures = 0;
    writeln!(
        out,
        "{} as {} → {} ({} mode). /help for commands.",
        style.bold("wemp sim chat"),
        sim.target().openid,
        sim.target().url,
        sim.target().mode
    )?;
    for line in input.lines() {
        let line = line?;
        let spec = match parse_line(&line) {
            Ok(Command::Quit) => break,
            Ok(Command::Nothing) => continue,
            Ok(Command::Help) => {
                writeln!(out, "{HELP}")?;
                continue;
            }
            Ok(Command::History) => {
                for (you, bot) in &history {
                    writeln!(out, "{} {you}\n{} {bot}", style.dim("you:"), style.dim("bot:"))?;
                }
                continue;
            }
            Ok(Command::Send(spec)) => spec,
            Err(e) => {
                writeln!(out, "{}", style.yellow(&e.to_string()))?;
                continue;
            }
        };
        let incoming = match super::message(sim, &spec) {
            Ok(m) => m,
            Err(e) => {
                writeln!(out, "{}", style.yellow(&e.to_string()))?;
                continue;
            }
        };
        let delivery = sim.deliver(&incoming).await;
        let bot = match &delivery.outcome {
            DeliveryVerdict::Reply { message, problems, warnings, .. } if problems.is_empty() => {
                let text = render_reply(&message.reply);
                writeln!(out, "{} {}", style.green("bot:"), text)?;
                for w in warnings {
                    writeln!(out, "     {} {}", style.yellow("warning:"), style.dim(&w.to_string()))?;
                }
                text
            }
            outcome => {
                failures += 1;
                writeln!(out, "{} {}", style.red("bot:"), style.red(USER_ERROR_BANNER))?;
                for reason in outcome.failures() {
                    writeln!(out, "     {}", style.dim(&reason))?;
                }
                USER_ERROR_BANNER.to_owned()
            }
        };
        history.push((if spec.is_message() { line.clone() } else { format!("[{}]", spec.label()) }, bot));
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::EventSpec;

    #[test]
    fn lines_map_to_messages_and_events() {
        assert_eq!(parse_line("hello world").unwrap(), Command::Send(MessageSpec::text("hello world")));
        assert_eq!(
            parse_line("/click V1001").unwrap(),
            Command::Send(MessageSpec::Event(EventSpec::Click { key: "V1001".into() }))
        );
        assert_eq!(
            parse_line("/subscribe promo").unwrap(),
            Command::Send(MessageSpec::Event(EventSpec::Subscribe {
                scene: Some("promo".into()),
                ticket: "sim_ticket".into()
            }))
        );
        assert!(matches!(
            parse_line("/location -33.9 151.2").unwrap(),
            Command::Send(MessageSpec::Location { lat, .. }) if lat == -33.9
        ));
        assert!(matches!(
            parse_line("/event pic_sysphoto K --count 2").unwrap(),
            Command::Send(MessageSpec::Event(EventSpec::PicSysphoto { count: 2, .. }))
        ));
        assert!(matches!(
            parse_line("/event other user_get_card -f CardId=p1 -f \"OuterStr=a b\"").unwrap(),
            Command::Send(MessageSpec::Event(EventSpec::Other { event, fields }))
                if event == "user_get_card" && fields == [("CardId".into(), "p1".into()), ("OuterStr".into(), "a b".into())]
        ));
        assert!(parse_line("/event other x -f nonsense").is_err());
        assert!(matches!(parse_line("/send link \"https://e.com/a b\"").unwrap(),
            Command::Send(MessageSpec::Link { url, .. }) if url == "https://e.com/a b"));
        assert_eq!(parse_line("/quit").unwrap(), Command::Quit);
        assert_eq!(parse_line("  ").unwrap(), Command::Nothing);
        assert!(parse_line("/nope").unwrap_err().to_string().contains("unknown command"));
        assert!(parse_line("/click").is_err());
    }
}

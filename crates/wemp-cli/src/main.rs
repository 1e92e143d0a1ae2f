//! The `wemp` command.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use wemp_cli::bench::{self, BenchOptions};
use wemp_cli::config::ServeArgs;
use wemp_cli::i18n::{self, Lang, Msg};
use wemp_cli::sim::check::{self, Status};
use wemp_cli::sim::{self, DeliveryVerdict, Kind, MessageSpec, Simulator, Target};
use wemp_cli::term::{ColorChoice, Progress, Style};
use wemp_proto::Mode;

/// The wemp binary allocates many small blocks per request (bodies, headers, records) and
/// frees most of them before the next: jemalloc hands a thread the block it freed last of a
/// size first, while it is still in the cache, where mimalloc went through the rest of its page
/// first (with mimalloc `wemp serve` missed the last-level cache ~120 times a request under
/// callgrind's simulation, with jemalloc ~50, and spent more instructions allocating: see
/// BENCHMARKS.md). The system allocator reuses as promptly but costs more instructions.
///
/// It runs with one arena (`narenas:1`, set for the build in `.cargo/config.toml`): with the
/// default of four per CPU each thread gets an arena of its own, and after the bench's 300 000
/// messages `wemp serve` held 57 MB instead of 43–45. jemalloc does not build with MSVC: a
/// Windows build made with it keeps the system allocator.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `println!` that ends the program quietly when standard output is closed (`wemp doctor |
/// head -1`) instead of panicking.
macro_rules! outln {
    () => {
        crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        crate::write_out(format_args!($($arg)*))
    };
}

/// Writes to standard output; a reader that went away (broken pipe) ends the program with
/// success, as it does for `grep` or `head`, and any other failure with status 1.
fn write_out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("wemp: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

mod crypto;
mod parse;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the server failed: verification refused, a check failed, a bench request failed, or the
     user would see an error;
     doctor found a problem; log found no message log
  2  usage or configuration error (bad flags, invalid key, unreadable file); serve could not start";

/// wemp — WeChat Official Account server toolkit.
#[derive(Debug, Parser)]
#[command(name = "wemp", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// When to colour output: auto (on a terminal without NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, hide_possible_values = true)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bot: rules from wemp.toml (or the built-in demo), message log, reload on change.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeCmd),
    /// Check a setup: config, Token, EncodingAESKey, appid, database, Redis, API access.
    #[command(
        after_help = DOCTOR_HELP,
        mut_arg("token", |a| a.help("The Token to check instead of the configured one (3–32 letters and digits)"))
    )]
    Doctor(DoctorCmd),
    /// Show the message log that `wemp serve` writes.
    #[command(after_help = LOG_HELP)]
    Log(LogCmd),
    /// Signatures and message encryption, as WeChat computes them.
    #[command(subcommand)]
    Crypto(crypto::CryptoCommand),
    /// Parse a message XML from stdin and print the typed value as JSON.
    Parse(parse::ParseArgs),
    /// Play the WeChat platform against a server URL (yours or any implementation).
    #[command(subcommand)]
    Sim(SimCommand),
    /// Load-test a server with distinct messages.
    Bench(BenchArgs),
    /// An Open Platform third-party platform (the component section of wemp.toml): authorization URL, authorizers.
    #[command(subcommand)]
    Component(ComponentCommand),
    /// Relay a `wemp serve --forward relay` to an app on this machine (no tunnel, no inbound port).
    #[command(after_help = RELAY_HELP)]
    Relay(RelayCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Perform the URL verification handshake (GET with echostr) and explain any failure.
    Verify {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Send one message or event as WeChat would and print the decoded reply.
    #[command(
        after_help = "Examples:\n  wemp sim send http://127.0.0.1:8080/wechat --token T text \"hi\"\n  \
                            wemp sim send URL --token T event subscribe --scene promo\n  \
                            wemp sim send URL --token T --appid wx… --aes-key K --mode safe location 23.1 113.3"
    )]
    Send {
        #[command(flatten)]
        conn: ConnArgs,
        /// How requests are protected: plain, compatible or safe [default: safe with --aes-key, else plain].
        #[arg(long, value_parser = wemp_cli::config::mode_parser())]
        mode: Option<Mode>,
        /// Also print the request and reply XML.
        #[arg(short, long)]
        verbose: bool,
        /// What to send.
        #[command(subcommand)]
        message: MessageSpec,
    },
    /// An interactive session as one user: type text, or /click KEY, /subscribe, /scan S, /help …
    Chat {
        #[command(flatten)]
        conn: ConnArgs,
        /// How requests are protected: plain, compatible or safe [default: safe with --aes-key, else plain].
        #[arg(long, value_parser = wemp_cli::config::mode_parser())]
        mode: Option<Mode>,
    },
    /// Conformance run: handshake, every type in each mode, retries, forged and malformed requests.
    Check {
        #[command(flatten)]
        conn: ConnArgs,
        /// Modes to check (repeatable); default: plain, plus compatible and safe when --aes-key is given.
        #[arg(long = "mode", value_parser = wemp_cli::config::mode_parser())]
        modes: Vec<Mode>,
    },
}

/// How to reach the server and whom to play.
#[derive(Debug, Args)]
struct ConnArgs {
    /// The server's callback URL, e.g. http://127.0.0.1:8080/wechat.
    url: String,
    /// The Token configured in the WeChat console and on the server.
    #[arg(long, env = "WEMP_TOKEN", hide_env_values = true, required_unless_present = "config")]
    token: Option<String>,
    /// Take the Token, appid, EncodingAESKey and mode from this config file (with the WEMP_*
    /// variables, as `wemp serve` reads it): the account whose path the URL ends in, else the
    /// first. Flags still win.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// The mode of the account read with --config.
    #[arg(skip)]
    config_mode: Option<Mode>,
    /// What kind of account to play: official_account, wecom (always encrypted, needs
    /// --corpid and --aes-key) or miniprogram [default: the --config account's kind, else
    /// official_account].
    #[arg(long, value_parser = wemp_cli::config::kind_parser())]
    kind: Option<Kind>,
    /// The account's appid (needed for compatible and safe mode).
    #[arg(long, env = "WEMP_APPID")]
    appid: Option<String>,
    /// A WeCom app's corpid (the ReceiveId of its envelopes and the messages' ToUserName).
    #[arg(long, conflicts_with = "appid")]
    corpid: Option<String>,
    /// A WeCom app's AgentID, sent in each callback.
    #[arg(long)]
    agentid: Option<String>,
    /// A Mini Program's data format, as chosen in its message push settings: xml or json
    /// (json is refused for other kinds: an Official Account's and a WeCom app's callbacks
    /// are XML only).
    #[arg(long, default_value = "xml", value_parser = ["xml", "json"])]
    format: String,
    /// The EncodingAESKey, 43 characters (needed for compatible and safe mode).
    #[arg(long, env = "WEMP_AES_KEY", hide_env_values = true)]
    aes_key: Option<String>,
    /// The OpenID of the simulated user.
    #[arg(long, default_value = sim::DEFAULT_OPENID)]
    openid: String,
    /// The account's original id (gh_…), the messages' ToUserName.
    #[arg(long, default_value = sim::DEFAULT_ACCOUNT)]
    account: String,
    /// Print JSON instead of text, for scripts.
    #[arg(long)]
    json: bool,
    /// Accept an untrusted TLS certificate (a staging server with a self-signed one).
    #[arg(long)]
    insecure: bool,
    /// Wait per try in milliseconds (WeChat: 5000). For tests.
    #[arg(long, hide = true, env = "WEMP_SIM_TIMEOUT_MS")]
    timeout_ms: Option<u64>,
    /// Tries per message (WeChat: 3). For tests.
    #[arg(long, hide = true, default_value_t = sim::WECHAT_TRIES)]
    tries: u32,
}

/// Why `--config` cannot complete the connection arguments (worded by [`ConnError::text`]).
#[derive(Debug)]
enum ConnError {
    /// The file does not load.
    Config(wemp_cli::config::ConfigError),
    /// The file has no account.
    NoAccount(std::path::PathBuf),
    /// The account has no Token.
    NoToken { file: std::path::PathBuf, index: usize },
}

impl From<wemp_cli::config::ConfigError> for ConnError {
    fn from(e: wemp_cli::config::ConfigError) -> Self {
        Self::Config(e)
    }
}

impl ConnError {
    /// The error in `lang` (a config file's problems each at its file and line).
    fn text(&self, lang: Lang) -> String {
        match self {
            Self::Config(e) => e.text(lang),
            Self::NoAccount(file) => Msg::SimNoAccount.fill(lang, &[("file", &file.display())]),
            Self::NoToken { file, index } => {
                Msg::SimNoToken.fill(lang, &[("file", &file.display()), ("index", index)])
            }
        }
    }
}

impl ConnArgs {
    /// These arguments completed from `--config`: the Token, appid, EncodingAESKey and mode
    /// of the account whose path the URL ends in (else the first), where no flag gave them.
    fn resolved(mut self) -> Result<Self, ConnError> {
        let Some(file) = self.config.clone() else { return Ok(self) };
        let args = ServeArgs { config: Some(file.clone()), ..ServeArgs::default() };
        let (cfg, _) = wemp_cli::config::Config::resolve(&args, env_var)?;
        let path = reqwest::Url::parse(&self.url).map(|u| u.path().to_owned()).unwrap_or_default();
        let i = (0..cfg.accounts.len()).find(|&i| cfg.account_path(i) == path).unwrap_or(0);
        let Some(account) = cfg.accounts.get(i) else {
            return Err(ConnError::NoAccount(file));
        };
        let exposed = |s: &Option<wemp_proto::Secret>| s.as_ref().map(|s| s.expose().to_owned());
        self.token = self.token.or_else(|| exposed(&account.token));
        if self.token.is_none() {
            return Err(ConnError::NoToken { file, index: i });
        }
        self.kind = self.kind.or(Some(account.kind));
        if account.kind == Kind::Wecom {
            self.corpid = self.corpid.take().or_else(|| self.appid.take()).or_else(|| account.corpid.clone());
            self.agentid = self.agentid.or_else(|| account.agentid.clone());
        } else {
            self.appid = self.appid.or_else(|| account.appid.clone());
        }
        self.aes_key = self.aes_key.or_else(|| exposed(&account.aes_key));
        self.config_mode = Some(account.effective_mode());
        Ok(self)
    }

    /// The kind asked for (or read with `--config`), else an Official Account.
    fn kind(&self) -> Kind {
        self.kind.unwrap_or_default()
    }

    /// The mode asked for, else the mode of the account read with `--config`, else safe
    /// for a WeCom app (always encrypted) or when an EncodingAESKey is given (what a server
    /// configured with one most likely requires), else plain.
    fn mode(&self, asked: Option<Mode>) -> Mode {
        let encrypted = self.aes_key.is_some() || self.kind() == Kind::Wecom;
        asked.or(self.config_mode).unwrap_or(if encrypted { Mode::Safe } else { Mode::Plain })
    }

    fn target(&self, mode: Mode) -> Target {
        let mut target = Target::new(self.url.clone(), self.token.clone().unwrap_or_default());
        target.kind = self.kind();
        target.appid = self.corpid.clone().or_else(|| self.appid.clone());
        target.agentid = self.agentid.clone();
        target.format = self.format.parse().unwrap_or_default();
        target.aes_key = self.aes_key.clone();
        target.mode = mode;
        target.openid = self.openid.clone();
        target.account = self.account.clone();
        target.tries = self.tries;
        target.insecure = self.insecure;
        if let Some(ms) = self.timeout_ms {
            target.timeout = Duration::from_millis(ms.max(1));
        }
        target
    }
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// How requests are protected: plain, compatible or safe [default: safe with --aes-key, else plain].
    #[arg(long, value_parser = wemp_cli::config::mode_parser())]
    mode: Option<Mode>,
    /// Requests in flight at once.
    #[arg(short, long, default_value_t = 16)]
    concurrency: usize,
    /// Stop after this many requests (default 1000 when --duration is not given).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Stop after this long, e.g. 10s, 2m (at most 1h).
    #[arg(short, long, value_parser = wemp_cli::config::parse_duration)]
    duration: Option<Duration>,
    /// The text each message carries.
    #[arg(long, default_value = "bench")]
    content: String,
}

const SERVE_HELP: &str = "\
With no arguments: listens on 127.0.0.1:8080 at /wechat in plain mode with the demo rules,
generates a Token and saves it to ./wemp-data/wemp.toml, and logs messages to
./wemp-data/wemp.db. The first screen says what to paste into the WeChat console.

The web console (chat with the bot as a test user, live log, setup) is served at
/console (console.path, WEMP_CONSOLE_PATH): open on loopback, beyond loopback only with
an admin token (console.token or WEMP_CONSOLE_TOKEN); WEMP_CONSOLE=false turns it off.

Precedence: built-in defaults < config file < WEMP_* variables < flags. The AppSecret
(for late replies through the customer-service API) comes only from the file or
WEMP_APPSECRET. Rules reload on SIGHUP and when the config file changes.
Log verbosity: WEMP_LOG (e.g. info, debug, wemp_server=debug).";

const DOCTOR_HELP: &str = "\
Reads the same config file, WEMP_* variables and flags as `wemp serve`. The AppSecret comes
only from the file or WEMP_APPSECRET. Writes nothing: no database file, PostgreSQL schema or
Redis key is created. Speaks Chinese under a zh_CN locale (LC_ALL, LC_MESSAGES, LANG).
Exit code 1 when a check fails.";

const LOG_HELP: &str = "\
Examples:
  wemp log                         the last 50 messages
  wemp log --user o_abc --since 1h
  wemp log --type text --json      one JSON object per line (msg_id as a string)
  wemp log --follow                keep printing new messages (Ctrl-C to stop)
  TZ=Asia/Shanghai wemp log        times in that zone (default: the local one; --utc for UTC)";

/// `wemp serve`.
#[derive(Debug, Args)]
struct ServeCmd {
    #[command(flatten)]
    args: ServeArgs,
    /// The platform API base URL (default `https://api.weixin.qq.com`). For tests.
    #[arg(long, hide = true, env = "WEMP_API_BASE")]
    api_base: Option<String>,
}

/// `wemp component`.
#[derive(Debug, Subcommand)]
enum ComponentCommand {
    /// Print the authorization page's URL, with a fresh pre_auth_code (needs the ticket
    /// `wemp serve` stored).
    AuthorizeUrl {
        /// Where the browser returns after authorizing (with auth_code). Default, with
        /// console.public_url set: its origin + component.path + /authorized, the page
        /// `wemp serve` answers.
        #[arg(long)]
        redirect: Option<String>,
        /// The page opened inside WeChat, instead of the PC page (QR code).
        #[arg(long)]
        mobile: bool,
        #[command(flatten)]
        at: ComponentAt,
    },
    /// List the accounts that authorized the platform.
    List {
        /// Print JSON instead of text, for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: ComponentAt,
    },
}

/// Where `wemp component` finds the platform and its state.
#[derive(Debug, Args)]
struct ComponentAt {
    /// The config file (default: DATA_DIR/wemp.toml when it exists).
    #[arg(long, short = 'c', env = "WEMP_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// The data directory [default: ./wemp-data].
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// The platform API base URL (default `https://api.weixin.qq.com`). For tests.
    #[arg(long, hide = true, env = "WEMP_API_BASE")]
    api_base: Option<String>,
}

/// `wemp relay`.
#[derive(Debug, Args)]
struct RelayCmd {
    /// The server's relay endpoint, as its start-up screen prints it (ws://…/wechat/relay, or wss://).
    url: String,
    /// The app to post each message to.
    #[arg(long)]
    to: String,
    /// How long one call to the app may take.
    #[arg(long, default_value = "60s", value_parser = wemp_cli::config::parse_duration)]
    timeout: Duration,
}

const RELAY_HELP: &str = "\
The secret is read from WEMP_FORWARD_SECRET: the server's gateway.forward_secret, which the app
also uses to check X-Wemp-Signature. It is never sent: the connection proves it knows it.

Example:
  WEMP_FORWARD_SECRET=… wemp relay wss://bot.example.com/wechat/relay --to http://127.0.0.1:5000/wechat";

/// `wemp doctor`.
#[derive(Debug, Args)]
struct DoctorCmd {
    #[command(flatten)]
    args: ServeArgs,
    /// The platform API base URL, e.g. a fake platform's (default `https://api.weixin.qq.com`).
    #[arg(long, env = "WEMP_API_BASE")]
    api_base: Option<String>,
    /// Print JSON instead of text, for scripts.
    #[arg(long)]
    json: bool,
    /// How long each network check may take.
    #[arg(long, default_value = "5s", value_parser = wemp_cli::config::parse_duration)]
    timeout: Duration,
}

/// `wemp log`.
#[derive(Debug, Args)]
struct LogCmd {
    /// The config file (default: DATA_DIR/wemp.toml when it exists).
    #[arg(long, short = 'c', env = "WEMP_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// The data directory [default: ./wemp-data].
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Database URL: sqlite://path or postgres://… [default: sqlite://DATA_DIR/wemp.db].
    #[arg(long)]
    database: Option<String>,
    /// Only this user's messages (OpenID).
    #[arg(long)]
    user: Option<String>,
    /// Only messages this recent, e.g. 30m, 1h, 2d.
    #[arg(long, value_parser = wemp_cli::config::parse_duration)]
    since: Option<Duration>,
    /// Only this message type or event: text, image, location, event, subscribe, CLICK …
    #[arg(long = "type")]
    kind: Option<String>,
    /// Show at most the last N messages.
    #[arg(short = 'n', long, default_value_t = 50)]
    last: usize,
    /// Keep printing new messages as they are logged (a retry joining a message printed
    /// already prints its entry again: same id, its attempts now).
    #[arg(short, long)]
    follow: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Show times in UTC instead of the local time zone (TZ, else the system's).
    #[arg(long)]
    utc: bool,
    /// How often --follow checks for new messages, in milliseconds.
    #[arg(long, hide = true, default_value_t = 500)]
    poll_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = Style::for_stdout(cli.color);
    match cli.command {
        Command::Serve(cmd) => {
            init_tracing(cli.color);
            runtime().block_on(run_serve(cmd, style))
        }
        Command::Doctor(cmd) => runtime().block_on(run_doctor(cmd, style)),
        Command::Log(cmd) => runtime().block_on(run_log(cmd, style)),
        Command::Crypto(cmd) => crypto::run(cmd),
        Command::Parse(args) => parse::run(args),
        Command::Sim(cmd) => runtime().block_on(run_sim(cmd, style)),
        Command::Bench(args) => runtime().block_on(run_bench(args, style)),
        Command::Relay(cmd) => runtime().block_on(run_relay(cmd)),
        Command::Component(cmd) => runtime().block_on(run_component(cmd)),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "wemp", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            ExitCode::SUCCESS
        }
    }
}

async fn run_component(cmd: ComponentCommand) -> ExitCode {
    let at = match &cmd {
        ComponentCommand::AuthorizeUrl { at, .. } | ComponentCommand::List { at, .. } => at,
    };
    let args = ServeArgs { config: at.config.clone(), data_dir: at.data_dir.clone(), ..ServeArgs::default() };
    let cfg = match wemp_cli::config::Config::resolve(&args, env_var) {
        Ok((cfg, _)) => cfg,
        Err(e) => return usage_error(&e.to_string()),
    };
    let result = match &cmd {
        ComponentCommand::AuthorizeUrl { redirect, mobile, at } => {
            wemp_cli::component::authorize_url(&cfg, at.api_base.as_deref(), redirect.as_deref(), *mobile)
                .await
        }
        ComponentCommand::List { json, .. } => wemp_cli::component::list(&cfg)
            .await
            .map(|l| if *json { serde_json::to_string_pretty(&l).unwrap_or_default() } else { l.to_text() }),
    };
    match result {
        Ok(text) => {
            outln!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wemp component: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Log lines go to standard error, coloured by the same rule as the rest: `--color`, and
/// on `auto` only on a terminal without `NO_COLOR`.
fn init_tracing(color: ColorChoice) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use wemp_cli::term::logging;
    let spec = env_var("WEMP_LOG");
    let filter = logging::filter(spec.as_deref());
    let ansi = Style::new(color, std::io::stderr().is_terminal()).enabled();
    let lines =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    // Uncoloured, the same lines without the default's styling pass around every field.
    let _ = if ansi {
        registry.with(lines).try_init()
    } else {
        let sole = !logging::filter_reads_spans(spec.as_deref());
        registry
            .with(logging::PlainLines::new(lines.fmt_fields(logging::PlainFields)).sole_reader(sole))
            .try_init()
    };
}

async fn run_serve(cmd: ServeCmd, style: Style) -> ExitCode {
    let opts = wemp_cli::serve::RunOptions { api_base: cmd.api_base };
    match wemp_cli::serve::run(cmd.args, env_var, opts, style, wemp_server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wemp serve: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_relay(cmd: RelayCmd) -> ExitCode {
    let opts = wemp_cli::relay::Options {
        url: cmd.url,
        to: cmd.to,
        secret: env_var("WEMP_FORWARD_SECRET").unwrap_or_default().into(),
        timeout: cmd.timeout,
        lang: Lang::detect(),
    };
    if let Err(e) = wemp_cli::relay::check(&opts) {
        eprintln!("wemp relay: {e}");
        return ExitCode::from(2);
    }
    match wemp_cli::relay::run(opts, |line| outln!("{line}"), wemp_server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

async fn run_doctor(cmd: DoctorCmd, style: Style) -> ExitCode {
    // JSON is for scripts: its check names stay English whatever the locale.
    let lang = if cmd.json { Lang::En } else { Lang::detect() };
    let report = wemp_cli::doctor::run(&cmd.args, env_var, cmd.api_base.as_deref(), cmd.timeout, lang).await;
    if cmd.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("passed".into(), report.passed().into());
        }
        json_line(&value);
    } else {
        for f in &report.findings {
            let label = match f.status {
                Status::Pass => style.green(f.status.label()),
                Status::Warn => style.yellow(f.status.label()),
                Status::Fail => style.red(f.status.label()),
                Status::Skip => style.dim(f.status.label()),
            };
            let first = f.details.first().map(|d| format!(": {d}")).unwrap_or_default();
            outln!("{label}  {}{first}", f.name);
            for d in f.details.iter().skip(1) {
                outln!("      {d}");
            }
        }
        let summary = Msg::DoctorSummary.fill(
            lang,
            &[
                ("pass", &report.count(Status::Pass)),
                ("fail", &report.count(Status::Fail)),
                ("warn", &report.count(Status::Warn)),
                ("skip", &report.count(Status::Skip)),
            ],
        );
        outln!("\n{summary}");
    }
    if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn run_log(cmd: LogCmd, style: Style) -> ExitCode {
    use wemp_cli::logview;
    let args = ServeArgs {
        config: cmd.config,
        data_dir: cmd.data_dir,
        database: cmd.database,
        ..ServeArgs::default()
    };
    let cfg = match wemp_cli::config::Config::resolve(&args, env_var) {
        Ok((cfg, _)) => cfg,
        Err(e) => return usage_error(&e.to_string()),
    };
    let location = wemp_cli::storage::LogLocation::of(&cfg.storage);
    let log = loop {
        match location.open_existing().await {
            Ok(Some(log)) => break log,
            Ok(None) if cmd.follow => tokio::time::sleep(Duration::from_millis(cmd.poll_ms)).await,
            Ok(None) => {
                eprintln!(
                    "wemp log: no message log at {} yet: start `wemp serve` (with the same --data-dir / --database)",
                    location.describe()
                );
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("wemp log: cannot open {}: {e}", location.describe());
                return ExitCode::FAILURE;
            }
        }
    };
    let filter = logview::Filter { user: cmd.user, since: cmd.since, kind: cmd.kind, last: cmd.last };
    // `--since` counts back from now; following keeps that cutoff.
    let started = logview::now_ms();
    let (rows, cursor) = match logview::read_with_cursor(log.as_ref(), &filter, started).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wemp log: {e}");
            return ExitCode::FAILURE;
        }
    };
    let zone = if cmd.utc { logview::Zone::utc() } else { logview::Zone::local() };
    let print = |rows: &[(i64, wemp_store::DeliveryRecord)]| {
        let mut out = std::io::stdout().lock();
        for (id, e) in rows {
            let line = if cmd.json {
                logview::to_json(*id, e, &zone).to_string()
            } else {
                logview::table_row(e, style, &zone)
            };
            if writeln!(out, "{line}").is_err() {
                return false;
            }
        }
        out.flush().is_ok()
    };
    if !cmd.json && (!rows.is_empty() || cmd.follow) {
        outln!("{}", logview::table_header(style, &zone));
    }
    if !print(&rows) {
        return ExitCode::SUCCESS;
    }
    if !cmd.follow {
        if rows.is_empty() && !cmd.json {
            eprintln!("(no messages match)");
        }
        return ExitCode::SUCCESS;
    }
    // Follow: everything after the last row the first read looked at; a retry joining an
    // entry shown already prints that entry again, with the same id and its attempts now.
    let mut follow = logview::Follow::new(cursor, started, &rows);
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(cmd.poll_ms)) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
        match follow.poll(log.as_ref(), &filter).await {
            Ok(followed) => {
                let rows: Vec<_> = followed
                    .into_iter()
                    .map(|f| match f {
                        logview::Followed::New(id, e) | logview::Followed::Updated(id, e) => (id, e),
                    })
                    .collect();
                if !print(&rows) {
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) => eprintln!("wemp log: {e}"),
        }
    }
}

fn usage_error(msg: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("wemp: {msg}");
    ExitCode::from(2)
}

fn json_line(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => outln!("{s}"),
        Err(e) => eprintln!("cannot write JSON: {e}"),
    }
}

async fn run_sim(cmd: SimCommand, style: Style) -> ExitCode {
    let lang = Lang::detect();
    let resolve = |conn: ConnArgs| conn.resolved();
    let cmd = match cmd {
        SimCommand::Verify { conn } => resolve(conn).map(|conn| SimCommand::Verify { conn }),
        SimCommand::Send { conn, mode, verbose, message } => {
            resolve(conn).map(|conn| SimCommand::Send { conn, mode, verbose, message })
        }
        SimCommand::Chat { conn, mode } => resolve(conn).map(|conn| SimCommand::Chat { conn, mode }),
        SimCommand::Check { conn, modes } => resolve(conn).map(|conn| SimCommand::Check { conn, modes }),
    };
    let cmd = match cmd {
        Ok(cmd) => cmd,
        Err(e) => return usage_error(&e.text(lang)),
    };
    match cmd {
        SimCommand::Verify { conn } => {
            let sim = match Simulator::new(conn.target(Mode::Plain)) {
                Ok(sim) => sim,
                Err(e) => return usage_error(&e.0),
            };
            let echostr = sim::random_msg_id().to_string();
            let report = sim.verify(&echostr).await;
            if conn.json {
                json_line(&report);
            } else {
                outln!("{}", Msg::VerifySent.fill(lang, &[("url", &conn.url), ("echostr", &echostr)]));
                outln!("  {}", sim::words::exchange(&report.attempt.exchange, sim.target().timeout, lang));
                if report.ok {
                    outln!("{} {}", style.green("✓"), Msg::VerifyOk.get(lang));
                } else {
                    outln!("{} {}", style.red("✗"), Msg::VerifyFails.get(lang));
                    for p in &report.problems {
                        outln!("  - {}", sim::words::verify_problem(p, lang));
                    }
                }
                for w in &report.warnings {
                    let w = sim::words::verify_problem(w, lang);
                    outln!("  {} {w}", style.yellow(Msg::WarningLabel.get(lang)));
                }
            }
            if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        SimCommand::Send { conn, mode, verbose, message } => {
            let sim = match Simulator::new(conn.target(conn.mode(mode))) {
                Ok(sim) => sim,
                Err(e) => return usage_error(&e.0),
            };
            let incoming = match sim::message(&sim, &message) {
                Ok(m) => m,
                Err(e) => return usage_error(&e.to_string()),
            };
            let delivery = sim.deliver(&incoming).await;
            let failed = delivery.outcome.user_sees_error();
            if conn.json {
                let mut value = serde_json::to_value(&delivery).unwrap_or_default();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("user_sees_error".into(), failed.into());
                    obj.insert("msg_id".into(), incoming.msg_id().map(|id| id.to_string()).into());
                }
                json_line(&value);
            } else {
                print_delivery(&sim, &message, &incoming, &delivery, verbose, style, lang);
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        SimCommand::Chat { conn, mode } => {
            let sim = match Simulator::new(conn.target(conn.mode(mode))) {
                Ok(sim) => sim,
                Err(e) => return usage_error(&e.0),
            };
            let stdin = std::io::stdin();
            let mut out = std::io::stdout();
            match sim::chat::run(&sim, stdin.lock(), &mut out, style).await {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("wemp: {e}");
                    ExitCode::from(2)
                }
            }
        }
        SimCommand::Check { conn, modes } => {
            let modes = if modes.is_empty() {
                if conn.kind() == Kind::Wecom {
                    // WeCom sends safe mode only; a plain request must be refused.
                    vec![Mode::Plain, Mode::Safe]
                } else if conn.aes_key.is_some() {
                    vec![Mode::Plain, Mode::Compatible, Mode::Safe]
                } else {
                    vec![Mode::Plain]
                }
            } else {
                modes
            };
            let sim = match Simulator::new(conn.target(Mode::Plain)) {
                Ok(sim) => sim,
                Err(e) => return usage_error(&e.0),
            };
            if let Some(m) = modes.iter().find(|m| m.is_encrypted())
                && sim.with_mode(*m).is_err()
            {
                return usage_error(&Msg::ModeNeedsKey.fill(lang, &[("mode", &i18n::mode_name(*m, lang))]));
            }
            let json = conn.json;
            if !json {
                outln!("{}", Msg::Checking.fill(lang, &[("url", &conn.url), ("n", &modes.len())]));
            }
            // `--json` keeps the English words whatever the locale.
            let words = if json { Lang::En } else { lang };
            let report = check::run(&sim, &modes, words, |result| {
                if json {
                    return;
                }
                let label = match result.status {
                    Status::Pass => style.green(result.status.label()),
                    Status::Warn => style.yellow(result.status.label()),
                    Status::Fail => style.red(result.status.label()),
                    Status::Skip => style.dim(result.status.label()),
                };
                let note = match (result.status, result.details.first()) {
                    (Status::Pass, Some(d)) => format!(" {}", style.dim(&format!("({d})"))),
                    _ => String::new(),
                };
                outln!("{label}  {}{note}", result.name);
                if result.status != Status::Pass {
                    for d in &result.details {
                        outln!("      {d}");
                    }
                }
                let _ = std::io::stdout().flush();
            })
            .await;
            if json {
                let mut value = serde_json::to_value(&report).unwrap_or_default();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("passed".into(), report.passed().into());
                }
                json_line(&value);
            } else {
                outln!(
                    "\n{}",
                    Msg::ChecksSummary.fill(
                        lang,
                        &[
                            ("pass", &report.count(Status::Pass)),
                            ("fail", &report.count(Status::Fail)),
                            ("warn", &report.count(Status::Warn)),
                            ("skip", &report.count(Status::Skip)),
                        ]
                    )
                );
            }
            if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}

fn print_delivery(
    sim: &Simulator,
    spec: &MessageSpec,
    incoming: &wemp_proto::Incoming,
    delivery: &sim::Delivery,
    verbose: bool,
    style: Style,
    lang: Lang,
) {
    let id = incoming.msg_id().map(|id| Msg::SimMsgId.fill(lang, &[("id", &id)])).unwrap_or_default();
    outln!(
        "{}",
        Msg::SimSent.fill(
            lang,
            &[
                ("what", &spec.label()),
                ("mode", &i18n::mode_name(delivery.mode, lang)),
                ("id", &id),
                ("url", &sim.target().url)
            ]
        )
    );
    if verbose {
        outln!("{}", style.dim(&delivery.request));
    }
    for a in &delivery.attempts {
        let elapsed = sim::fmt_duration(Duration::from_millis(
            u64::try_from(a.elapsed.as_millis()).unwrap_or(u64::MAX),
        ));
        let what = sim::words::exchange(&a.exchange, sim.target().timeout, lang);
        outln!("{}", Msg::SimTry.fill(lang, &[("n", &a.number), ("what", &what), ("elapsed", &elapsed)]));
    }
    match &delivery.outcome {
        DeliveryVerdict::Reply { message, encrypted, xml, problems, warnings } => {
            match &message.header {
                None if sim.target().kind == Kind::Miniprogram => {
                    outln!("← {}", style.bold(Msg::MiniprogramSuccess.get(lang)));
                }
                None => outln!("← {}", style.bold(Msg::NoReply.get(lang))),
                Some(h) => {
                    let kind = message.reply.msg_type().unwrap_or("?");
                    let enc = if *encrypted { Msg::Encrypted.get(lang) } else { "" };
                    outln!("← {}", style.bold(&Msg::ReplyOf.fill(lang, &[("kind", &kind), ("enc", &enc)])));
                    outln!("  To {}  From {}  CreateTime {}", h.to, h.from, h.create_time);
                    for line in sim::chat::render_reply(&message.reply).lines() {
                        outln!("  {line}");
                    }
                }
            }
            if verbose && message.header.is_some() {
                outln!("{}", style.dim(xml));
            }
            if !problems.is_empty() {
                let refused = Msg::ReplyRefused.fill(lang, &[("banner", &sim::USER_ERROR_BANNER)]);
                outln!("{} {refused}", style.red("✗"));
                for p in problems {
                    outln!("  - {}", sim::words::problem(p, lang));
                }
            }
            for w in warnings {
                let w = sim::words::problem(w, lang);
                outln!("  {} {w}", style.yellow(Msg::WarningLabel.get(lang)));
            }
        }
        DeliveryVerdict::Failed { .. } => {
            let reason = sim::words::failures(delivery, sim.target().timeout, lang).join("; ");
            outln!("{} {reason}", style.red("✗"));
            outln!("{}", Msg::UserWouldSee.fill(lang, &[("banner", &sim::USER_ERROR_BANNER)]));
        }
    }
}

async fn run_bench(mut args: BenchArgs, style: Style) -> ExitCode {
    args.conn = match args.conn.resolved() {
        Ok(conn) => conn,
        Err(e) => return usage_error(&e.text(Lang::detect())),
    };
    let target = args.conn.target(args.conn.mode(args.mode));
    let sim = match Simulator::new(target) {
        Ok(sim) => sim,
        Err(e) => return usage_error(&e.0),
    };
    let opts = match BenchOptions::new(args.concurrency, args.requests, args.duration, args.content) {
        Ok(o) => o,
        Err(e) => return usage_error(&e),
    };
    let progress = Progress::stderr();
    // `--json` keeps the English words whatever the locale.
    let lang = if args.conn.json { Lang::En } else { Lang::detect() };
    let report = bench::run(&sim, &opts, lang, |done, fraction| {
        progress.draw(fraction, &format!("{done} requests"));
    })
    .await;
    progress.finish();
    if args.conn.json {
        json_line(&report);
    } else {
        out!("{}", report.render(style, lang));
    }
    if report.errors_total() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

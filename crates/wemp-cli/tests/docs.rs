//! The Chinese documents stay in step with the English ones: the same commands, configs and
//! snippets (comments may be translated), and the README's bot snippet is the example that
//! CI builds.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The fenced code blocks of a Markdown file, each as its lines without comments
/// (` # …`, ` // …`), trailing blanks and empty lines: what a reader types or pastes.
fn code_blocks(md: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(b) => blocks.push(b),
                None => current = Some(Vec::new()),
            }
            continue;
        }
        if let Some(b) = current.as_mut() {
            let code = strip_comment(line).trim_end().to_owned();
            if !code.trim().is_empty() {
                b.push(code);
            }
        }
    }
    blocks
}

/// `line` without a trailing comment: `#` or `//` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') && !trimmed.starts_with("#[") || trimmed.starts_with("//") {
        return "";
    }
    let cut = [" # ", " // "].iter().filter_map(|m| line.find(m)).min();
    cut.map_or(line, |i| &line[..i])
}

fn assert_same_code(english: &str, chinese: &str) {
    let (en, zh) = (code_blocks(&read(english)), code_blocks(&read(chinese)));
    assert!(!en.is_empty(), "{english} has no code blocks");
    assert_eq!(
        en.len(),
        zh.len(),
        "{english} and {chinese} have different numbers of code blocks: update {chinese} with {english}"
    );
    for (i, (e, z)) in en.iter().zip(&zh).enumerate() {
        assert_eq!(e, z, "code block {i} of {chinese} differs from {english}'s: keep them in step");
    }
}

/// The numbered section headings (`## 5.`), the number of `##`/`###` headings and of tables:
/// a section added to the English document without its translation shows here even when it
/// has no code block.
fn assert_same_shape(english: &str, chinese: &str) {
    let shape = |md: &str| {
        let numbers: Vec<String> = md
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|h| h.split_once(' ').map_or("", |(n, _)| n).trim_end_matches('.').to_owned())
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty())
            .collect();
        let count = |p: &str| md.lines().filter(|l| l.starts_with(p)).count();
        let tables =
            md.lines().filter(|l| l.starts_with("|-") || l.starts_with("| -") || l.starts_with("|:")).count();
        (numbers, count("## "), count("### "), tables)
    };
    assert_eq!(
        shape(&read(english)),
        shape(&read(chinese)),
        "{chinese} is not in step with {english}: (numbered sections, ## headings, ### headings, tables) differ"
    );
}

#[test]
fn the_chinese_readme_lists_the_same_commands() {
    assert_same_code("README.md", "README.zh-CN.md");
    assert_same_shape("README.md", "README.zh-CN.md");
}

#[test]
fn the_chinese_deploy_guide_has_the_same_configs_and_commands() {
    assert_same_code("docs/deploy.md", "docs/zh-CN/deploy.md");
    assert_same_shape("docs/deploy.md", "docs/zh-CN/deploy.md");
}

#[test]
fn the_chinese_gateway_guide_has_the_same_configs_commands_and_snippets() {
    assert_same_code("docs/gateway.md", "docs/zh-CN/gateway.md");
    assert_same_shape("docs/gateway.md", "docs/zh-CN/gateway.md");
}

#[test]
fn the_chinese_component_guide_has_the_same_configs_commands_and_snippets() {
    assert_same_code("docs/component.md", "docs/zh-CN/component.md");
    assert_same_shape("docs/component.md", "docs/zh-CN/component.md");
}

#[test]
fn each_english_document_links_its_chinese_version_and_back() {
    assert!(read("README.md").lines().take(5).any(|l| l.contains("](README.zh-CN.md)")));
    assert!(read("README.zh-CN.md").lines().take(5).any(|l| l.contains("](README.md)")));
    assert!(read("docs/deploy.md").lines().take(5).any(|l| l.contains("](zh-CN/deploy.md)")));
    assert!(read("docs/zh-CN/deploy.md").lines().take(5).any(|l| l.contains("](../deploy.md)")));
    assert!(read("docs/gateway.md").lines().take(5).any(|l| l.contains("](zh-CN/gateway.md)")));
    assert!(read("docs/zh-CN/gateway.md").lines().take(5).any(|l| l.contains("](../gateway.md)")));
    assert!(read("docs/component.md").lines().take(5).any(|l| l.contains("](zh-CN/component.md)")));
    assert!(read("docs/zh-CN/component.md").lines().take(5).any(|l| l.contains("](../component.md)")));
    assert!(
        read("README.zh-CN.md").contains("](docs/zh-CN/gateway.md)"),
        "README.zh-CN.md links the Chinese gateway guide"
    );
    assert!(
        read("README.zh-CN.md").contains("](docs/zh-CN/component.md)"),
        "README.zh-CN.md links the Chinese component guide"
    );
}

#[test]
fn the_readme_quick_start_installs_the_wemp_it_then_runs() {
    // One release build that leaves `wemp` on the PATH, so every command the start screen
    // prints (`wemp sim send …`, `wemp log`) runs as printed.
    let readme = read("README.md");
    let quick = &readme[readme.find("## Quick start").unwrap()..];
    let first = &code_blocks(quick)[0];
    assert_eq!(first, &["cargo install --locked --path crates/wemp-cli", "wemp serve"], "{first:?}");
    let manifest = read("crates/wemp-cli/Cargo.toml");
    assert!(manifest.contains("[[bin]]\nname = \"wemp\""), "crates/wemp-cli builds the `wemp` binary");
}

#[test]
fn the_readme_bot_is_the_example_ci_builds() {
    let readme = read("README.md");
    let start = readme.find("```rust").expect("a Rust snippet in the README");
    let snippet = &readme[start..];
    let snippet = &snippet[snippet.find('\n').unwrap() + 1..snippet.find("\n```").unwrap()];
    let example: String = read("crates/wemp-server/examples/echo_bot.rs").split_whitespace().collect();
    for line in snippet.lines().map(strip_comment) {
        let code: String = line.split_whitespace().collect();
        if code.is_empty() {
            continue;
        }
        assert!(example.contains(&code), "README line {line:?} is not in examples/echo_bot.rs");
    }
}

/// The "where to paste the URL" tables (README, deploy guide, in both languages) name the
/// places the setup screen prints for each kind (`wemp_cli::i18n`'s paste lines, in both
/// languages): each step of a screen's path is on the table row that names its host.
#[test]
fn the_paste_tables_name_the_places_the_setup_screen_prints() {
    use wemp_cli::i18n::{Lang, Msg};
    let places = [Msg::PasteInto, Msg::WecomPasteInto, Msg::MiniprogramPasteInto, Msg::ComponentPasteInto];
    for (doc, lang) in [
        ("README.md", Lang::En),
        ("docs/deploy.md", Lang::En),
        ("README.zh-CN.md", Lang::Zh),
        ("docs/zh-CN/deploy.md", Lang::Zh),
    ] {
        let text = read(doc);
        for place in places {
            let screen = place.get(lang);
            // The path is in the screen's parentheses: `(host → step → …)`.
            let open = screen.rfind(['(', '（']).unwrap_or_else(|| panic!("{place:?}: {screen}"));
            let path = screen[open..].trim_start_matches(['(', '（']);
            let path = path.split([')', '）']).next().unwrap();
            let steps: Vec<&str> = path.split(" → ").collect();
            let host = steps[0];
            let row = text
                .lines()
                .find(|l| l.starts_with('|') && l.contains(host))
                .unwrap_or_else(|| panic!("{doc}: no table row names {host} ({place:?})"));
            for step in &steps[1..] {
                // A step naming the app by its AgentID ({agentid}) is "the app" / "该应用" in the docs.
                if step.contains('{') {
                    continue;
                }
                assert!(row.contains(step), "{doc}: the row for {host} lacks the step {step:?}: {row}");
            }
        }
    }
}

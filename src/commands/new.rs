//! `nexus new`: a new Spin app from a template, like `spin new -t http-rust`.
//!
//! The templates are plain files compiled into the binary (`templates/<template>/`), with
//! `{{name}}`, `{{crate_name}}` and `{{description}}` placeholders. There is no template
//! language: every value is checked before it is put in, so a plain replace is enough.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

/// The longest app name: one DNS label, so that the name can become part of a host name.
const MAX_NAME_LEN: usize = 63;

/// The description put in `spin.toml` and `Cargo.toml` when none is given.
const DEFAULT_DESCRIPTION: &str = "A Spin HTTP app";

/// Names `cargo new` refuses for a package (Rust keywords, and the built-in crates a package
/// would shadow); refused here for the same reasons.
const RESERVED_NAMES: &[&str] = &[
    "abstract", "alloc", "as", "async", "await", "become", "box", "break", "const", "continue",
    "core", "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen",
    "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv",
    "pub", "ref", "return", "self", "static", "std", "struct", "super", "test", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

#[derive(Debug, Args)]
pub struct NewCommand {
    /// The app's name: lowercase letters, digits and `-`, starting with a letter, at most 63
    /// characters. It names the app, its one component and the Rust package.
    name: String,

    /// The template to start from.
    #[arg(short, long, value_enum, default_value_t = Template::HttpRust)]
    template: Template,

    /// The directory to create the app in (new or empty). Default: `./<name>`.
    #[arg(short, long)]
    dir: Option<PathBuf>,

    /// One line describing the app, for `spin.toml` and `Cargo.toml`.
    #[arg(long, default_value = DEFAULT_DESCRIPTION)]
    description: String,
}

/// The templates `nexus new` can start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// An HTTP component in Rust on spin-sdk 5.2, built for `wasm32-wasip2`.
    HttpRust,
}

/// How a template file's placeholders are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// Placeholders stand inside TOML basic strings (`"..."`): the description is escaped.
    Toml,
    /// Placeholders are replaced as they are.
    Text,
}

/// One file of a template: where it goes in the new app, and its text.
struct TemplateFile {
    path: &'static str,
    syntax: Syntax,
    text: &'static str,
}

// The template files end in `.tmpl` so that no tool takes them for the real thing: a
// `Cargo.toml` in the tree would be a nested package, a `.gitignore` would apply to this
// repository, and `{{name}}` is not valid TOML or Rust.
const HTTP_RUST: &[TemplateFile] = &[
    TemplateFile {
        path: "spin.toml",
        syntax: Syntax::Toml,
        text: include_str!("templates/http-rust/spin.toml.tmpl"),
    },
    TemplateFile {
        path: "Cargo.toml",
        syntax: Syntax::Toml,
        text: include_str!("templates/http-rust/Cargo.toml.tmpl"),
    },
    TemplateFile {
        path: "src/lib.rs",
        syntax: Syntax::Text,
        text: include_str!("templates/http-rust/src/lib.rs.tmpl"),
    },
    TemplateFile {
        path: ".gitignore",
        syntax: Syntax::Text,
        text: include_str!("templates/http-rust/gitignore.tmpl"),
    },
    TemplateFile {
        path: "README.md",
        syntax: Syntax::Text,
        text: include_str!("templates/http-rust/README.md.tmpl"),
    },
];

impl Template {
    fn files(self) -> &'static [TemplateFile] {
        match self {
            Template::HttpRust => HTTP_RUST,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Template::HttpRust => "http-rust",
        }
    }
}

/// The checked values a template is filled in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffold {
    /// The app's name, also its component id and its Rust package name.
    pub name: String,
    /// The Rust crate name: the name with `_` for `-`. Cargo names the `.wasm` file after it.
    pub crate_name: String,
    /// One line of text, as given.
    pub description: String,
}

impl Scaffold {
    /// Checks `name` (see [`validate_name`]) and `description` (one line, no control
    /// characters).
    pub fn new(name: &str, description: &str) -> anyhow::Result<Self> {
        if let Err(reason) = validate_name(name) {
            bail!(
                "invalid app name {name:?}: {reason}\n  hint: use lowercase letters, digits and \
                 `-`, starting with a letter, like `hello-world`"
            );
        }
        if description.chars().any(char::is_control) {
            bail!("the description must be one line of text, without control characters");
        }
        Ok(Self {
            name: name.to_owned(),
            crate_name: crate_name(name),
            description: description.to_owned(),
        })
    }

    /// The files of `template` with every placeholder filled in: (path in the app, contents).
    pub fn render(&self, template: Template) -> Vec<(&'static str, String)> {
        template
            .files()
            .iter()
            .map(|file| (file.path, self.fill(file.text, file.syntax)))
            .collect()
    }

    fn fill(&self, text: &str, syntax: Syntax) -> String {
        let description = match syntax {
            Syntax::Toml => escape_toml_basic_string(&self.description),
            Syntax::Text => self.description.clone(),
        };
        // The description goes in last, so that text in it is never taken for a placeholder.
        text.replace("{{crate_name}}", &self.crate_name)
            .replace("{{name}}", &self.name)
            .replace("{{description}}", &description)
    }
}

/// Checks an app name: lowercase ASCII letters, digits and `-`, starting with a letter, at most
/// [`MAX_NAME_LEN`] characters. It must also be a Spin component id (`-` only between words)
/// and a name `cargo` accepts for a package (not a Rust keyword). Returns why not.
pub fn validate_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it must not be empty".to_owned());
    };
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "it must be at most {MAX_NAME_LEN} characters long (it has {})",
            name.chars().count()
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err(format!(
            "it must start with a lowercase letter, not {first:?}"
        ));
    }
    if let Some(invalid) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "it may contain only lowercase letters, digits and `-`, not {invalid:?}"
        ));
    }
    // Spin's component ids (`KebabId`) are words joined by single dashes.
    if name.ends_with('-') || name.contains("--") {
        return Err("`-` may only stand between words: not at the end, and not twice".to_owned());
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(
            "it is a Rust keyword or a built-in crate's name, which cargo refuses for a package"
                .to_owned(),
        );
    }
    Ok(())
}

/// The Rust crate name of the package `name`, as cargo derives it.
pub fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// `text` escaped for the inside of a TOML basic string (control characters are refused
/// earlier, so only `\` and `"` need it).
fn escape_toml_basic_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Writes `files` (paths relative to `dir`) into `dir`, which must be missing or empty: an app
/// is never written over existing work.
pub fn write_files(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty\n  hint: choose another name, or pass \
                     `--dir <path>` with a new or empty directory",
                    dir.display()
                );
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) if dir.exists() && !dir.is_dir() => {
            bail!(
                "{} already exists and is not a directory\n  hint: choose another name, or pass \
                 `--dir <path>` with a new or empty directory",
                dir.display()
            );
        }
        Err(error) => {
            return Err(error).with_context(|| format!("failed to read {}", dir.display()));
        }
    }
    for (relative_path, contents) in files {
        let path = dir.join(relative_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        // `create_new`: even a file that appeared since the check above is not overwritten.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        file.write_all(contents.as_bytes())
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

impl NewCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let scaffold = Scaffold::new(&self.name, &self.description)?;
        let dir = self.dir.unwrap_or_else(|| PathBuf::from(&scaffold.name));
        let files = scaffold.render(self.template);
        write_files(&dir, &files)?;

        println!(
            "Created the {} app `{}` in {}:",
            self.template.name(),
            scaffold.name,
            dir.display()
        );
        for (path, _) in &files {
            println!("  {path}");
        }
        println!();
        println!("Next:");
        println!("  cd {}", dir.display());
        println!("  nexus build");
        println!("  nexus up");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn files_under(dir: &Path) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in std::fs::read_dir(&current).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(dir).unwrap();
                    found.insert(relative.to_str().unwrap().to_owned());
                }
            }
        }
        found
    }

    fn scaffold_into(dir: &Path, name: &str, description: &str) {
        let scaffold = Scaffold::new(name, description).unwrap();
        write_files(dir, &scaffold.render(Template::HttpRust)).unwrap();
    }

    #[test]
    fn names_that_are_kebab_case_package_names_are_accepted() {
        let longest = format!("a{}", "b".repeat(MAX_NAME_LEN - 1));
        for name in ["hi", "hi-there", "a1", "web-2-go", "x-9", longest.as_str()] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn other_names_are_refused_with_a_reason() {
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        let cases = [
            ("", "empty"),
            ("Hi", "lowercase letter"),
            ("1hi", "lowercase letter"),
            ("-hi", "lowercase letter"),
            ("hi_there", "not '_'"),
            ("hi there", "not ' '"),
            ("héllo", "not 'é'"),
            ("hi-", "not at the end"),
            ("hi--there", "not twice"),
            ("fn", "Rust keyword"),
            ("test", "built-in crate"),
            (too_long.as_str(), "at most 63"),
        ];
        for (name, reason) in cases {
            let error = validate_name(name).unwrap_err();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
        let error = Scaffold::new("Hi", DEFAULT_DESCRIPTION).unwrap_err();
        assert!(error.to_string().contains("hint:"), "{error}");
    }

    #[test]
    fn the_crate_name_has_underscores_for_dashes() {
        assert_eq!(crate_name("hi-there-2"), "hi_there_2");
        assert_eq!(crate_name("hello"), "hello");
    }

    #[test]
    fn a_multi_line_description_is_refused() {
        assert!(Scaffold::new("hi", "one\ntwo").is_err());
    }

    #[test]
    fn the_scaffold_writes_exactly_the_template_files_with_placeholders_filled_in() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("hi-there");
        let description = r#"Says "hi" \ waves"#;
        scaffold_into(&dir, "hi-there", description);

        let expected: BTreeSet<String> = [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "spin.toml",
            "src/lib.rs",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(files_under(&dir), expected);
        for path in &expected {
            let text = std::fs::read_to_string(dir.join(path)).unwrap();
            assert!(
                !text.contains("{{"),
                "{path} still has a placeholder:\n{text}"
            );
        }

        let read = |path: &str| std::fs::read_to_string(dir.join(path)).unwrap();
        let cargo: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
        assert_eq!(cargo["package"]["name"].as_str(), Some("hi-there"));
        assert_eq!(cargo["package"]["description"].as_str(), Some(description));
        assert_eq!(cargo["lib"]["crate-type"][0].as_str(), Some("cdylib"));
        assert_eq!(cargo["dependencies"]["spin-sdk"].as_str(), Some("5.2"));
        assert!(cargo["workspace"].is_table());
        let release = &cargo["profile"]["release"];
        assert_eq!(release["opt-level"].as_str(), Some("s"));
        assert_eq!(release["lto"].as_bool(), Some(true));
        assert_eq!(release["strip"].as_bool(), Some(true));
        assert_eq!(release["codegen-units"].as_integer(), Some(1));

        let spin: toml::Table = toml::from_str(&read("spin.toml")).unwrap();
        assert_eq!(
            spin["application"]["description"].as_str(),
            Some(description)
        );
        let component = &spin["component"]["hi-there"];
        assert_eq!(
            component["source"].as_str(),
            Some("target/wasm32-wasip2/release/hi_there.wasm")
        );
        assert_eq!(
            component["build"]["command"].as_str(),
            Some("cargo build --target wasm32-wasip2 --release")
        );

        let lib = read("src/lib.rs");
        assert!(lib.contains("fn handle_hi_there("), "{lib}");
        assert!(lib.contains(r#".body("Hello from hi-there!")"#), "{lib}");
        assert!(
            lib.contains(r#".header("content-type", "text/plain")"#),
            "{lib}"
        );
        assert_eq!(read(".gitignore"), "target/\n");
        let readme = read("README.md");
        assert_eq!(readme.lines().count(), 3, "{readme}");
        for command in ["nexus build", "nexus up", "nexus deploy"] {
            assert!(readme.contains(command), "{readme}");
        }
    }

    #[test]
    fn the_generated_manifest_loads_and_names_the_component_and_route() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("hi-there");
        scaffold_into(&dir, "hi-there", DEFAULT_DESCRIPTION);
        // The loader digests the component's bytes; stand in for `nexus build`.
        let wasm = dir.join("target/wasm32-wasip2/release/hi_there.wasm");
        std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
        std::fs::write(&wasm, b"\0asm\x0d\0\x01\0").unwrap();

        let loaded = nexus_manifest::load(&dir.join("spin.toml")).unwrap();
        assert_eq!(loaded.app.name, "hi-there");
        assert_eq!(
            loaded.app.components.keys().collect::<Vec<_>>(),
            ["hi-there"]
        );
        assert!(
            loaded.app.components["hi-there"]
                .allowed_outbound_hosts
                .is_empty()
        );
        assert_eq!(loaded.app.http_triggers.len(), 1);
        let trigger = &loaded.app.http_triggers[0];
        assert_eq!(trigger.component, "hi-there");
        assert_eq!(
            trigger.route,
            nexus_proto::app::HttpRoute::Path("/...".to_owned())
        );
        assert_eq!(loaded.artifacts.values().collect::<Vec<_>>(), [&wasm]);
    }

    #[test]
    fn an_existing_empty_directory_is_used() {
        let temp = tempfile::tempdir().unwrap();
        scaffold_into(temp.path(), "hi", DEFAULT_DESCRIPTION);
        assert!(temp.path().join("spin.toml").is_file());
    }

    #[test]
    fn an_existing_non_empty_directory_is_refused_and_left_alone() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("notes.txt"), "mine").unwrap();
        let scaffold = Scaffold::new("hi", DEFAULT_DESCRIPTION).unwrap();
        let error = write_files(temp.path(), &scaffold.render(Template::HttpRust)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("already exists and is not empty"),
            "{message}"
        );
        assert!(message.contains("hint: "), "{message}");
        assert_eq!(
            files_under(temp.path()),
            BTreeSet::from(["notes.txt".to_owned()])
        );
    }

    #[test]
    fn a_file_in_the_way_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("hi");
        std::fs::write(&path, "mine").unwrap();
        let scaffold = Scaffold::new("hi", DEFAULT_DESCRIPTION).unwrap();
        let error = write_files(&path, &scaffold.render(Template::HttpRust)).unwrap_err();
        assert!(error.to_string().contains("is not a directory"), "{error}");
    }
}

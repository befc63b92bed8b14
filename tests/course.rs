//! The course in `docs/course/` points at code that exists: every link resolves to a file of
//! the repository, every example a chapter tells you to run exists, and every chapter listed in
//! the course's index exists (and every chapter is listed).

use std::path::{Path, PathBuf};

fn course_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/course")
}

fn chapters() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(course_dir())
        .expect("docs/course exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        if let Some(end) = after.find(')') {
            out.push(after[..end].to_string());
        }
        rest = &rest[at + 2..];
    }
    out
}

#[test]
fn every_link_of_the_course_resolves() {
    let mut checked = 0;
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).expect("readable");
        for target in links(&text) {
            if target.starts_with("http") {
                continue;
            }
            let file = target.split('#').next().unwrap_or("");
            let path = chapter.parent().expect("a folder").join(file);
            assert!(
                path.exists(),
                "{}: link {target} points nowhere",
                chapter.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} links");
}

#[test]
fn every_function_a_chapter_names_in_a_file_is_there() {
    // "`Graph::record` in [src/autodiff/graph.rs](…)": the item is defined in that file.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for chapter in chapters() {
        let text = std::fs::read_to_string(&chapter).expect("readable");
        let text = text.replace(".\n", ". ").replace('\n', " ");
        for sentence in text.split(". ") {
            let Some(name_at) = sentence.find('`') else {
                continue;
            };
            // The first link after the name: the file it is said to be in.
            let Some(link_at) = sentence[name_at..].find("](../../").map(|at| at + name_at) else {
                continue;
            };
            let Some(name) = sentence[name_at + 1..].split('`').next() else {
                continue;
            };
            // A Rust name (`Graph::record`, `sum_to_shape`), not a command or a formula.
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                continue;
            }
            let item = name.rsplit("::").next().unwrap_or(name);
            let Some(file) = sentence[link_at + 8..].split(')').next() else {
                continue;
            };
            let Ok(source) = std::fs::read_to_string(root.join(file)) else {
                continue;
            };
            let declared = ["fn", "struct", "enum", "trait"].iter().any(|kw| {
                [format!("{kw} {item}("), format!("{kw} {item}<"), format!("{kw} {item} "), format!("{kw} {item}:")]
                    .iter()
                    .any(|pattern| source.contains(pattern.as_str()))
            })
                // An enum variant, `Activation::Selu`: declared on its own line.
                || source.contains(&format!("    {item},"))
                || source.contains(&format!("    {item} {{"));
            assert!(
                declared,
                "{}: {name} is not defined in {file}",
                chapter.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} names checked");
}

#[test]
fn every_example_a_chapter_runs_exists_and_every_chapter_is_in_the_index() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let index = std::fs::read_to_string(course_dir().join("README.md")).expect("the index");
    for chapter in chapters() {
        let name = chapter.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name != "README.md" {
            assert!(
                index.contains(&format!("({name})")),
                "{name} is not in the index"
            );
        }
        let text = std::fs::read_to_string(&chapter).expect("readable");
        for line in text.lines() {
            if let Some(rest) = line.split("--example ").nth(1) {
                let example: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    root.join("examples").join(format!("{example}.rs")).exists(),
                    "{name}: example {example} does not exist"
                );
            }
        }
    }
}

//! The house's layers, held: every module of `src/` imports only modules of its own layer or
//! below, and no two modules import each other — not at the top (`train` ↔ `viz`), not
//! between the rooms of one module (`experiments::eval` ↔ `experiments::report`), not between
//! the kernels' families.
//!
//! Imports are read from the source text: every `crate::name` and `super::name` outside
//! comments and test modules, `use crate::{a, b::c}` groups included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The handgrad crate's modules, bottom first. A module may use any module of a lower or the
/// same layer (but never one that uses it back).
const LAYERS: &[&[&str]] = &[
    &["error", "machine", "seed"],
    &["names", "fs"],
    &["autodiff", "data", "embed", "viz"],
    &["nn"],
    &["optim", "models"],
    &["train"],
    &["experiments"],
    &["explore"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for p in std::fs::read_dir(&d)
            .expect("readable")
            .flatten()
            .map(|e| e.path())
        {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                files.push(p);
            }
        }
    }
    files
}

/// The code of a file: comment lines dropped, and everything from the first `#[cfg(test)]`
/// on (tests may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    let body = text.split("#[cfg(test)]").next().unwrap_or("");
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first name after every `prefix` (`crate::`, `super::`), groups opened.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `handgrad_kernels::crate_x` and the like
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            names.extend(inner.split(',').map(|i| identifier(i.trim())));
        } else {
            names.insert(identifier(rest));
        }
    }
    names.remove("");
    names
}

/// For every module (a path below `root`, without `.rs` or `/mod.rs`), the sibling modules
/// it names: at the top, through `crate::`; one level down, through `crate::top::` and
/// `super::`.
fn imports(root: &Path) -> BTreeMap<Vec<String>, BTreeSet<String>> {
    let mut found: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(root) {
        let rel = file
            .strip_prefix(root)
            .expect("below the root")
            .with_extension("");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts.is_empty() || ["lib", "main", "testing"].contains(&parts[0].as_str()) {
            continue;
        }
        let code = code(&file);
        let top = parts[0].clone();
        let mut at_top = names_after(&code, "crate::");
        at_top.remove(&top);
        found.entry(vec![top.clone()]).or_default().extend(at_top);
        if parts.len() >= 2 {
            let sub = parts[1].clone();
            let mut within = names_after(&code, &format!("crate::{top}::"));
            if parts.len() == 2 {
                within.extend(names_after(&code, "super::"));
            }
            within.remove(&sub);
            found.entry(vec![top, sub]).or_default().extend(within);
        }
    }
    found
}

/// Pairs of modules (at the same depth, under the same parent) that name each other.
fn circles(imports: &BTreeMap<Vec<String>, BTreeSet<String>>) -> Vec<String> {
    let mut circles = Vec::new();
    for (module, names) in imports {
        for other in names {
            let mut sibling = module.clone();
            if let Some(last) = sibling.last_mut() {
                *last = other.clone();
            }
            let back = imports
                .get(&sibling)
                .is_some_and(|n| n.contains(module.last().expect("a name")));
            if back && module < &sibling {
                circles.push(format!("{} ↔ {}", module.join("::"), sibling.join("::")));
            }
        }
    }
    circles
}

fn root(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
}

#[test]
fn every_module_of_src_imports_only_its_own_layer_or_below() {
    let imports = imports(&root("src"));
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (module, names) in &imports {
        let [top] = module.as_slice() else { continue };
        let Some(own) = layer_of(top) else {
            if top != "cli" {
                wrong.push(format!("{top} is in no layer: add it to LAYERS"));
            }
            continue;
        };
        for name in names {
            // Items of the crate root (`crate::Error`, `crate::named_enum!`) belong to no layer.
            if let Some(theirs) = layer_of(name) {
                checked += 1;
                if theirs > own {
                    wrong.push(format!(
                        "{top} (layer {own}) imports {name} (layer {theirs})"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked > 30, "only {checked} imports found");
}

#[test]
fn no_two_modules_import_each_other() {
    for dir in ["src", "kernels/src"] {
        let imports = imports(&root(dir));
        assert!(imports.len() > 10, "{dir}: {} modules", imports.len());
        let circles = circles(&imports);
        assert!(circles.is_empty(), "{dir}: {}", circles.join(", "));
    }
}

#[test]
fn the_reader_finds_imports_in_groups_and_skips_comments() {
    let code = "use crate::{a::b, c};\n// crate::hidden\nlet x = crate::d::e();\nmycrate::f;";
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let names: Vec<String> = names_after(&code, "crate::").into_iter().collect();
    assert_eq!(names, ["a", "c", "d"]);
    let mut made_up = BTreeMap::new();
    made_up.insert(vec!["x".to_string()], BTreeSet::from(["y".to_string()]));
    made_up.insert(vec!["y".to_string()], BTreeSet::from(["x".to_string()]));
    assert_eq!(circles(&made_up), ["x ↔ y"]);
}

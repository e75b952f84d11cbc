//! The report as a document: a list of blocks built once, then rendered to Markdown and to HTML
//! by one renderer each, so the two files can never say different things. This module only
//! turns blocks into text (reading the PNGs the HTML inlines); it must never decide what the
//! report says — that is `report` and the demo's `present`.
//!
//! Why two small renderers rather than pulldown-cmark (Markdown rendered to HTML): the HTML
//! carries what plain Markdown cannot without raw-HTML escapes — heading ids, the verdicts'
//! colours, PNGs inlined as data URIs, a note where a figure is missing — and the Markdown is
//! written as the text stands (claims and findings are not Markdown-escaped), so parsing it back
//! could turn a `*` or `<` in a finding into markup. One model with a renderer of a few dozen
//! lines per format keeps both exact and needs no new dependency.

use crate::Verdict;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One block of the report, in reading order: what both renderings show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Block {
    /// A heading; `id` is the anchor the overview's links point to.
    Heading {
        level: u8,
        text: String,
        id: Option<String>,
    },
    /// Running text.
    Paragraph(Vec<Inline>),
    /// A header row of plain labels and rows of cells.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<Vec<Inline>>>,
    },
    /// A bullet list of plain lines (an experiment's conditions).
    List(Vec<String>),
    /// A PNG, `path` relative to the report's directory (inlined in the HTML).
    Image { path: String, alt: String },
    /// Preformatted text, such as the demo's terminal tables.
    Code(String),
}

/// Text within a paragraph or a table cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inline {
    /// Plain text, escaped in the HTML.
    Text(String),
    /// A command or a path.
    Code(String),
    /// A title quoted in running text.
    Emphasis(String),
    /// A paragraph's label ("The study:").
    Strong(Vec<Inline>),
    /// A link within the report (`#anchor`).
    Link { text: String, href: String },
    /// A verdict, coloured by its class in the HTML.
    Verdict(Verdict),
}

/// Plain text, the common case of [`Inline`].
pub fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

/// The document as Markdown: blocks separated by one blank line.
pub fn markdown(blocks: &[Block]) -> String {
    blocks.iter().map(block_md).collect::<Vec<_>>().join("\n")
}

fn block_md(block: &Block) -> String {
    match block {
        Block::Heading { level, text, id } => {
            let anchor = id
                .as_ref()
                .map_or(String::new(), |id| format!("<a id=\"{id}\"></a>\n\n"));
            format!("{anchor}{} {text}\n", "#".repeat(usize::from(*level)))
        }
        Block::Paragraph(inlines) => format!("{}\n", inlines_md(inlines)),
        Block::Table { header, rows } => {
            let mut s = format!(
                "| {} |\n|{}|\n",
                header.join(" | "),
                vec!["---"; header.len()].join("|")
            );
            for row in rows {
                // A `|` inside a cell would end it.
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| inlines_md(c).replace('|', "/"))
                    .collect();
                s.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            s
        }
        Block::List(items) => items.iter().map(|i| format!("- {i}\n")).collect(),
        Block::Image { path, alt } => format!("![{alt}]({path})\n"),
        Block::Code(text) => format!("```\n{text}\n```\n"),
    }
}

fn inlines_md(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|inline| match inline {
            Inline::Text(t) => t.clone(),
            Inline::Code(t) => format!("`{t}`"),
            Inline::Emphasis(t) => format!("*{t}*"),
            Inline::Strong(inner) => format!("**{}**", inlines_md(inner)),
            Inline::Link { text, href } => format!("[{text}]({href})"),
            Inline::Verdict(v) => v.to_string(),
        })
        .collect()
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
img{max-width:100%;border:1px solid #eee;margin:.5em 0}code,pre{background:#f5f5f5;padding:2px 4px}\
.agrees{color:#1a7f37}.partly{color:#9a6700}.differs{color:#cf222e}";

/// The document as one self-contained HTML page titled `title`, with the PNGs under `base`
/// inlined so that the page can be mailed or opened anywhere.
pub fn html(title: &str, blocks: &[Block], base: &Path) -> String {
    let mut s = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    for block in blocks {
        s.push_str(&block_html(block, base));
    }
    s.push_str("</body></html>\n");
    s
}

fn block_html(block: &Block, base: &Path) -> String {
    match block {
        Block::Heading { level, text, id } => {
            let id = id
                .as_ref()
                .map_or(String::new(), |id| format!(" id=\"{}\"", escape(id)));
            format!("<h{level}{id}>{}</h{level}>", escape(text))
        }
        Block::Paragraph(inlines) => format!("<p>{}</p>", inlines_html(inlines)),
        Block::Table { header, rows } => {
            let mut s = String::from("<table><tr>");
            for h in header {
                s.push_str(&format!("<th>{}</th>", escape(h)));
            }
            s.push_str("</tr>");
            for row in rows {
                s.push_str("<tr>");
                for cell in row {
                    s.push_str(&format!("<td>{}</td>", inlines_html(cell)));
                }
                s.push_str("</tr>");
            }
            s.push_str("</table>");
            s
        }
        Block::List(items) => {
            let items: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", escape(i)))
                .collect();
            format!("<ul>{items}</ul>")
        }
        Block::Image { path, alt } => match inline_png(&base.join(path)) {
            Some(data) => format!("<img src=\"{data}\" alt=\"{}\">", escape(alt)),
            None => format!("<p>(missing figure {})</p>", escape(path)),
        },
        Block::Code(text) => format!("<pre>{}</pre>", escape(text)),
    }
}

fn inlines_html(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|inline| match inline {
            Inline::Text(t) => escape(t),
            Inline::Code(t) => format!("<code>{}</code>", escape(t)),
            Inline::Emphasis(t) => format!("<em>{}</em>", escape(t)),
            Inline::Strong(inner) => format!("<strong>{}</strong>", inlines_html(inner)),
            Inline::Link { text, href } => {
                format!("<a href=\"{}\">{}</a>", escape(href), escape(text))
            }
            Inline::Verdict(v) => format!("<span class=\"{v}\">{v}</span>"),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn inline_png(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Block> {
        vec![
            Block::Heading {
                level: 2,
                text: "A & B".into(),
                id: Some("ab".into()),
            },
            Block::Paragraph(vec![
                Inline::Strong(vec![
                    text("Ours ("),
                    Inline::Verdict(Verdict::Agrees),
                    text("):"),
                ]),
                text(" x < y"),
            ]),
            Block::Table {
                header: vec!["finding".into(), "verdict".into()],
                rows: vec![vec![
                    vec![Inline::Link {
                        text: "A".into(),
                        href: "#ab".into(),
                    }],
                    vec![text("a | b")],
                ]],
            },
            Block::Image {
                path: "none/missing.png".into(),
                alt: "missing.png".into(),
            },
        ]
    }

    #[test]
    fn markdown_keeps_text_as_it_stands_and_anchors_headings() {
        assert_eq!(
            markdown(&sample()),
            "<a id=\"ab\"></a>\n\n## A & B\n\n**Ours (agrees):** x < y\n\n| finding | verdict |\n|---|---|\n| [A](#ab) | a / b |\n\n![missing.png](none/missing.png)\n"
        );
    }

    #[test]
    fn html_escapes_text_colours_verdicts_and_notes_a_missing_figure() {
        let page = html("t", &sample(), Path::new("/nonexistent"));
        assert!(page.contains("<h2 id=\"ab\">A &amp; B</h2>"), "{page}");
        assert!(page.contains(
            "<p><strong>Ours (<span class=\"agrees\">agrees</span>):</strong> x &lt; y</p>"
        ));
        assert!(page.contains("<td><a href=\"#ab\">A</a></td><td>a | b</td>"));
        assert!(page.contains("<p>(missing figure none/missing.png)</p>"));
        assert!(page.ends_with("</body></html>\n"));
    }

    #[test]
    fn blocks_survive_the_demo_section_file() {
        let blocks = sample();
        let json = serde_json::to_string(&blocks).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Block>>(&json).unwrap(), blocks);
    }
}

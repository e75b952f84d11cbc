//! Property tests: random and mutated cfg text never panics the parser, and whatever parses
//! exports to a graph without panicking.

mod common;

use deepoffload_detect::darknet::{to_onnx, Network, Weights};
use proptest::prelude::*;

fn yolov3_tiny_cfg() -> String {
    std::fs::read_to_string(common::shared_dir().join("models/yolov3-tiny/yolov3-tiny.cfg"))
        .unwrap()
}

/// One edit of a cfg: the kinds of damage hand-editing and truncated downloads cause.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    ReplaceValue(usize, String),
    InsertText(usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop_oneof![
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("99999999999".to_string()),
        Just("-40".to_string()),
        Just("3,4,5".to_string()),
        Just("mish".to_string()),
        Just("[yolo]".to_string()),
        Just("[route]".to_string()),
        Just("[reorg]".to_string()),
        Just("".to_string()),
        "[a-z=,\\[\\]0-9 .-]{0,12}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), token.clone()).prop_map(|(a, t)| Edit::ReplaceValue(a, t)),
        (any::<usize>(), token).prop_map(|(a, t)| Edit::InsertText(a, t)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::ReplaceValue(i, t) => {
                let l = &mut lines[i % n];
                if let Some((k, _)) = l.clone().split_once('=') {
                    *l = format!("{k}={t}");
                }
            }
            Edit::InsertText(i, t) => lines.insert(i % n, t.clone()),
            Edit::Truncate(i) => lines.truncate(i % n),
        }
    }
    lines.join("\n")
}

fn exercise(text: &str, size: usize) {
    if let Ok(net) = Network::parse(text, "fuzz.cfg", Some((size, size))) {
        let _ = net.bflops();
        if net.parameter_count() < 20_000_000 {
            let _ = to_onnx(&net, &Weights::synthetic(&net, 1), "fuzz", &[]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
        let _ = Network::parse(&text, "fuzz.cfg", Some((64, 64)));
    }

    #[test]
    fn sectioned_noise_never_panics(
        sections in proptest::collection::vec(
            ("(net|convolutional|maxpool|route|shortcut|upsample|yolo|region|reorg|dropout)",
             proptest::collection::vec(("[a-z_]{1,8}", "-?[0-9]{1,3}(,-?[0-9]{1,3}){0,3}"), 0..5)),
            0..8)
    ) {
        let mut text = String::new();
        for (kind, options) in sections {
            text.push_str(&format!("[{kind}]\n"));
            for (k, v) in options {
                text.push_str(&format!("{k}={v}\n"));
            }
        }
        exercise(&text, 64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_cfg_never_panics(edits in proptest::collection::vec(edit(), 1..6)) {
        let text = apply(&yolov3_tiny_cfg(), &edits);
        exercise(&text, 128);
    }
}

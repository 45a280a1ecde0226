//! The page and everything it loads, compiled into the binary: the dashboard works with no
//! network and nothing installed. The chart library is ECharts from npm, at the version
//! and with the licences in `assets/serve/vendor/echarts` (`update.sh` there re-fetches it).

/// A file of the page: its name under `/assets/`, its type and its bytes.
pub struct Asset {
    /// The name after `/assets/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// The page itself, served at `/`.
pub const INDEX: &str = include_str!("../../assets/serve/index.html");

/// Everything under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/serve/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/serve/app.css"),
    },
    Asset {
        name: "echarts.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/serve/vendor/echarts/echarts.min.js"),
    },
    Asset {
        name: "LICENSE-echarts.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/serve/vendor/echarts/LICENSE"),
    },
    Asset {
        name: "NOTICE-echarts.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/serve/vendor/echarts/NOTICE"),
    },
    Asset {
        name: "LICENSE-d3.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/serve/vendor/echarts/licenses/LICENSE-d3"),
    },
];

/// The asset named `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

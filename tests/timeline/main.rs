//! The timeline of a simulated minute of the quickstart bot: the SVG
//! renders (to PNG, with resvg) and has the structure it should — one lane
//! per group and emit, one bar per execute — checked on the parsed tree,
//! not on pixels.

use machina_core::testing::MockRuntime;
use machina_core::timeline::{CallEnd, Timeline};

#[path = "../../examples/timeline/bot.rs"]
mod bot;

#[test]
fn a_simulated_minute_draws_a_lane_per_group_and_a_bar_per_execute() {
    let mock = MockRuntime::new();
    let rt = mock.runtime();
    let timeline = Timeline::new();
    let executes = mock
        .block_on(bot::run(&rt, &timeline, 60))
        .unwrap()
        .unwrap();
    assert_eq!(executes, 120);
    assert_eq!(timeline.calls(), 120);
    assert_eq!(timeline.lanes(), ["emit emit", "limit"]);
    let endings = timeline.endings();
    assert_eq!(
        endings.values().sum::<usize>(),
        120,
        "every call ended: {endings:?}"
    );
    assert!(
        endings.get(&CallEnd::Ok).copied().unwrap_or(0) > 100,
        "{endings:?}"
    );

    let svg = timeline.render_svg();
    let options = resvg::usvg::Options::default();
    let tree = resvg::usvg::Tree::from_str(&svg, &options).expect("the SVG parses");
    // Count what was drawn, by the classes the renderer gives.
    let count = |class: &str| svg.matches(&format!(r#"class="{class}""#)).count();
    assert_eq!(count("lane"), 2);
    assert_eq!(count("call"), 120);
    assert_eq!(count("tick"), 60);
    assert!(
        count("retry") > 0,
        "a third of the attempts fail and are retried"
    );
    assert_eq!(count("axis"), 11);
    // And it renders.
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).expect("a canvas");
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().expect("a PNG");
    assert!(png.starts_with(&[0x89, b'P', b'N', b'G']));
    // Something other than the white background was drawn.
    assert!(
        pixmap
            .pixels()
            .iter()
            .any(|p| p.red() < 200 && p.green() > p.red())
    );
    if let Ok(path) = std::env::var("MACHINA_TIMELINE_PNG") {
        std::fs::write(path, png).unwrap();
    }
}

#[test]
fn an_empty_timeline_still_renders() {
    let svg = Timeline::new().render_svg();
    resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).expect("parses");
}

//! Reads OpenCV's trained cascades (the `opencv_storage` XML of OpenCV ≥ 2.4) into a
//! [`Cascade`]. Only what the workloads use is accepted: HAAR features, BOOST stages of
//! decision stumps, no tilted features; anything else is refused by name.

use crate::{Cascade, CascadeError, Stage, Stump, WeightedRect};
use roxmltree::{Document, Node};

fn err<T>(msg: impl Into<String>) -> Result<T, CascadeError> {
    Err(CascadeError(msg.into()))
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, CascadeError> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .ok_or_else(|| CascadeError(format!("<{}> has no <{name}>", node.tag_name().name())))
}

fn text<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str, CascadeError> {
    Ok(child(node, name)?.text().unwrap_or("").trim())
}

fn items<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|c| c.has_tag_name("_"))
}

fn numbers<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>, CascadeError> {
    s.split_ascii_whitespace()
        .map(|t| {
            t.parse()
                .map_err(|_| CascadeError(format!("bad number {t:?} in {what}")))
        })
        .collect()
}

/// Parses the XML text of an OpenCV Haar cascade.
pub fn parse(xml: &str) -> Result<Cascade, CascadeError> {
    let doc = Document::parse(xml).map_err(|e| CascadeError(format!("not valid XML: {e}")))?;
    let root = doc.root_element();
    let cascade = root
        .children()
        .find(|c| c.is_element())
        .ok_or_else(|| CascadeError("empty opencv_storage".into()))?;
    if text(cascade, "stageType")? != "BOOST" || text(cascade, "featureType")? != "HAAR" {
        return err(
            "only BOOST cascades of HAAR features are supported (this looks like an old-format or LBP cascade)",
        );
    }
    let width = text(cascade, "width")?
        .parse()
        .map_err(|_| CascadeError("bad <width>".into()))?;
    let height = text(cascade, "height")?
        .parse()
        .map_err(|_| CascadeError("bad <height>".into()))?;

    let mut features = Vec::new();
    for (i, f) in items(child(cascade, "features")?).enumerate() {
        if f.children()
            .any(|c| c.has_tag_name("tilted") && c.text().map(str::trim) == Some("1"))
        {
            return err(format!(
                "feature {i} is tilted; tilted features are not supported"
            ));
        }
        let mut rects = Vec::new();
        for r in items(child(f, "rects")?) {
            let v: Vec<f64> = numbers(r.text().unwrap_or(""), "a rectangle")?;
            let [x, y, w, h, weight] = v[..] else {
                return err(format!("feature {i}: a rectangle needs 5 numbers"));
            };
            let int = |v: f64| {
                if v >= 0.0 && v.fract() == 0.0 {
                    Ok(v as u32)
                } else {
                    err(format!("feature {i}: bad coordinate {v}"))
                }
            };
            rects.push(WeightedRect {
                x: int(x)?,
                y: int(y)?,
                w: int(w)?,
                h: int(h)?,
                weight,
            });
        }
        features.push(rects);
    }

    let mut stages = Vec::new();
    for (s, stage) in items(child(cascade, "stages")?).enumerate() {
        let threshold = numbers::<f64>(text(stage, "stageThreshold")?, "stageThreshold")?;
        let mut stumps = Vec::new();
        for weak in items(child(stage, "weakClassifiers")?) {
            let nodes: Vec<f64> = numbers(text(weak, "internalNodes")?, "internalNodes")?;
            let leaves: Vec<f64> = numbers(text(weak, "leafValues")?, "leafValues")?;
            // A stump is one node whose both children are leaves: "0 -1 feature threshold".
            let ([0.0, -1.0, feature, threshold], [left, right]) = (&nodes[..], &leaves[..]) else {
                return err(format!(
                    "stage {s}: only decision stumps are supported (internalNodes {nodes:?})"
                ));
            };
            stumps.push(Stump {
                feature: *feature as usize,
                threshold: *threshold,
                left: *left,
                right: *right,
            });
        }
        let [threshold] = threshold[..] else {
            return err(format!("stage {s}: bad stageThreshold"));
        };
        stages.push(Stage { threshold, stumps });
    }
    Cascade::new(width, height, features, stages)
}

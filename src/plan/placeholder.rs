//! Placeholders in plan strings: `{source.name}`, `{destination.id}`, `{source.name|slug}`, …

use uuid::Uuid;

/// A plan string with its placeholders parsed. (Stub: replaced by the plan work.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
}

/// What placeholders render to, for one target.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub source_name: &'a str,
    pub source_id: Uuid,
    pub source_type: &'a str,
    pub destination_name: &'a str,
    pub destination_id: Uuid,
    pub template_name: &'a str,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        Ok(Template {
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn render(&self, _names: &Names<'_>) -> String {
        self.text.clone()
    }
}

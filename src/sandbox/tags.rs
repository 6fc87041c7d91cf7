//! The workspace tags and Airbyte's rules for them (`TagHandler.kt`, `TagServiceDataImpl`).
//!
//! A tag's name has at most 30 characters (counted as the JVM counts them, in UTF-16 units) and
//! is unique in its workspace; its colour is exactly six hex digits (the database column is
//! `char(6)` with a hex check); a workspace holds at most 100 tags. The checks run in the
//! server's order: the name's length in the handler, then the limit in the service, then the
//! database's colour check, then its unique key. Connections carry copies of tag objects; the
//! store keeps those in step when a tag is renamed or deleted.

use super::problem::ApiError;
use crate::wire::{Tag, TagCreateRequest, TagPatchRequest};
use std::collections::HashMap;
use uuid::Uuid;

/// The longest tag name, in UTF-16 code units.
pub const MAX_NAME_LENGTH: usize = 30;

/// The most tags a workspace may hold.
pub const MAX_PER_WORKSPACE: usize = 100;

/// Every tag, in creation order (the order `GET /tags` lists them in), with an index by id.
#[derive(Debug, Default)]
pub struct Tags {
    tags: Vec<Tag>,
    ids: HashMap<Uuid, usize>,
}

impl Tags {
    /// Adds a tag as it is, without the rules (seeds are checked by their own loader);
    /// `false` when its id is taken.
    pub fn add(&mut self, tag: Tag) -> bool {
        if self.ids.contains_key(&tag.tag_id) {
            return false;
        }
        self.ids.insert(tag.tag_id, self.tags.len());
        self.tags.push(tag);
        true
    }

    pub fn get(&self, id: Uuid) -> Option<&Tag> {
        self.ids.get(&id).map(|&i| &self.tags[i])
    }

    /// The tags of these workspaces (none: every workspace).
    pub fn list(&self, workspaces: &[Uuid]) -> Vec<Tag> {
        self.tags
            .iter()
            .filter(|t| workspaces.is_empty() || workspaces.contains(&t.workspace_id))
            .cloned()
            .collect()
    }

    /// `POST /tags`, once the workspace is known to exist.
    pub fn create(&mut self, request: TagCreateRequest, id: Uuid) -> Result<Tag, ApiError> {
        check_name(&request.name)?;
        let in_workspace = self
            .tags
            .iter()
            .filter(|t| t.workspace_id == request.workspace_id)
            .count();
        if in_workspace >= MAX_PER_WORKSPACE {
            return Err(ApiError::tag_limit_reached());
        }
        check_color(&request.color)?;
        self.check_unique(request.workspace_id, &request.name, None)?;
        let tag = Tag {
            tag_id: id,
            workspace_id: request.workspace_id,
            name: request.name,
            color: request.color,
        };
        self.add(tag.clone());
        Ok(tag)
    }

    /// `PATCH /tags/{tagId}`: name and colour are both replaced.
    pub fn update(&mut self, id: Uuid, request: TagPatchRequest) -> Result<Tag, ApiError> {
        let position = self.position(id)?;
        check_name(&request.name)?;
        check_color(&request.color)?;
        let workspace = self.tags[position].workspace_id;
        self.check_unique(workspace, &request.name, Some(id))?;
        let tag = &mut self.tags[position];
        tag.name = request.name;
        tag.color = request.color;
        Ok(tag.clone())
    }

    /// `DELETE /tags/{tagId}`: returns the deleted tag.
    pub fn delete(&mut self, id: Uuid) -> Result<Tag, ApiError> {
        let position = self.position(id)?;
        let tag = self.tags.remove(position);
        self.ids = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tag_id, i))
            .collect();
        Ok(tag)
    }

    fn position(&self, id: Uuid) -> Result<usize, ApiError> {
        self.ids
            .get(&id)
            .copied()
            .ok_or_else(|| ApiError::not_found("tag", id.to_string()))
    }

    fn check_unique(
        &self,
        workspace: Uuid,
        name: &str,
        except: Option<Uuid>,
    ) -> Result<(), ApiError> {
        let taken = self
            .tags
            .iter()
            .any(|t| t.workspace_id == workspace && t.name == name && Some(t.tag_id) != except);
        if taken {
            Err(ApiError::tag_already_exists())
        } else {
            Ok(())
        }
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.encode_utf16().count() > MAX_NAME_LENGTH {
        Err(ApiError::tag_name_too_long())
    } else {
        Ok(())
    }
}

fn check_color(color: &str) -> Result<(), ApiError> {
    if color.len() == 6 && color.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::tag_invalid_hex_color())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, color: &str, workspace: Uuid) -> TagCreateRequest {
        TagCreateRequest {
            name: name.into(),
            color: color.into(),
            workspace_id: workspace,
        }
    }

    fn kind(result: Result<Tag, ApiError>) -> String {
        result.map_or_else(|e| e.0.problem_type.clone(), |t| t.name)
    }

    #[test]
    fn each_rule_has_its_problem_in_the_servers_order() {
        let w = Uuid::from_u128(1);
        let mut tags = Tags::default();
        let mut create =
            |name: &str, color: &str| kind(tags.create(request(name, color, w), Uuid::new_v4()));
        assert_eq!(create("a", "4f46E5"), "a");
        assert_eq!(create(&"x".repeat(31), "zz"), "error:tag-name-too-long");
        assert_eq!(
            create(&"é".repeat(30), "00FF00"),
            "é".repeat(30),
            "30 UTF-16 units"
        );
        assert_eq!(
            create(&"🦀".repeat(16), "00FF00"),
            "error:tag-name-too-long"
        );
        for bad in ["#00FF00", "0F0", "00FF0G", ""] {
            assert_eq!(create("b", bad), "error:tag-invalid-hex-color", "{bad}");
        }
        assert_eq!(
            create("a", "zz"),
            "error:tag-invalid-hex-color",
            "colour before uniqueness"
        );
        assert_eq!(create("a", "000000"), "error:tag-already-exists");
        assert_eq!(create("A", "000000"), "A", "names are case-sensitive");
    }

    #[test]
    fn a_workspace_holds_at_most_100_tags() {
        let (w, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut tags = Tags::default();
        for n in 0..MAX_PER_WORKSPACE {
            tags.create(request(&format!("t{n}"), "000000", w), Uuid::new_v4())
                .unwrap();
        }
        let full = tags.create(request("one more", "000000", w), Uuid::new_v4());
        assert_eq!(kind(full), "error:tag-limit-for-workspace-reached");
        let elsewhere = tags.create(request("one more", "000000", other), Uuid::new_v4());
        assert_eq!(kind(elsewhere), "one more");
    }

    #[test]
    fn updates_keep_names_unique_and_deletes_keep_the_index() {
        let w = Uuid::from_u128(1);
        let mut tags = Tags::default();
        let a = tags
            .create(request("a", "000000", w), Uuid::new_v4())
            .unwrap();
        let b = tags
            .create(request("b", "000000", w), Uuid::new_v4())
            .unwrap();
        let patch = |name: &str| TagPatchRequest {
            name: name.into(),
            color: "ABCDEF".into(),
        };
        assert_eq!(
            kind(tags.update(b.tag_id, patch("a"))),
            "error:tag-already-exists"
        );
        assert_eq!(
            kind(tags.update(b.tag_id, patch("b"))),
            "b",
            "its own name is fine"
        );
        tags.delete(a.tag_id).unwrap();
        assert_eq!(tags.get(b.tag_id).map(|t| t.color.as_str()), Some("ABCDEF"));
        assert_eq!(
            kind(tags.delete(a.tag_id)),
            "https://reference.airbyte.com/reference/errors#resource-not-found"
        );
    }
}

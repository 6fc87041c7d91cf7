//! The owner tag (SPEC §9): the workspace tag that marks the copies a plan made or adopted, so
//! that `prune` can tell them from connections it must never touch.
//!
//! resolve reads the workspace's tags (`GET /tags?workspaceIds=`) and finds the plan's `owner`
//! among them; build puts the tag into every desired body (creates carry it, a copy without it
//! is adopted by an update). When the tag does not exist yet, the bodies carry a *placeholder*:
//! the tag's name and colour with the nil id. `plan` shows it as it is (it never writes); `apply`
//! makes the real tag once, just before its first write needs it ([`OwnerTag::ensure`]), and the
//! executor swaps it in ([`fill`]). A run that writes nothing never makes it.
//!
//! Making it: `POST /tags` with [`COLOR`]. A workspace holds one tag of a name, so the post is
//! tried again after a lost answer like a read, and a 409 means it exists (that try, or another
//! run, made it): the tags are read again and the tag is taken from there.

use crate::client::{ApiError, Client};
use crate::wire::{Tag, TagCreateRequest};
use tokio::sync::Mutex;
use uuid::Uuid;

/// The colour of an owner tag made by replicate (six hex digits, as Airbyte requires).
pub const COLOR: &str = "4F46E5";

/// The workspace's tag called `name`, if there is one (names are case-sensitive and unique per
/// workspace).
pub fn find<'a>(tags: &'a [Tag], workspace: Uuid, name: &str) -> Option<&'a Tag> {
    tags.iter()
        .find(|t| t.workspace_id == workspace && t.name == name)
}

/// Whether `tag` is the placeholder of an owner tag not made yet.
pub fn is_placeholder(tag: &Tag) -> bool {
    tag.tag_id.is_nil()
}

/// Puts the real owner tag where a list of tags holds its placeholder; returns whether it did.
pub fn fill(tags: &mut [Tag], owner: &Tag) -> bool {
    let mut filled = false;
    for tag in tags.iter_mut().filter(|t| is_placeholder(t)) {
        tag.clone_from(owner);
        filled = true;
    }
    filled
}

/// Why the owner tag could not be made; every write that needs it fails with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerTagError {
    #[error("making the owner tag \"{name}\": {source}")]
    Create { name: String, source: ApiError },
    #[error("the owner tag \"{name}\" exists (409), but reading it back failed: {source}")]
    Read { name: String, source: ApiError },
    #[error(
        "the owner tag \"{name}\" exists (the server answered 409), but the workspace's tags do \
         not list it"
    )]
    Missing { name: String },
}

/// The plan's owner tag during a run: known, or to be made before the first write.
#[derive(Debug)]
pub struct OwnerTag {
    name: String,
    workspace: Uuid,
    /// The tag found by resolve; `None` until it is made.
    found: Option<Tag>,
    /// What making it gave, once tried: one try for the whole run, shared by every write.
    made: Mutex<Option<Result<Tag, OwnerTagError>>>,
}

impl OwnerTag {
    /// `found` is the tag as resolve found it in `workspace`, if it exists.
    pub fn new(name: &str, workspace: Uuid, found: Option<Tag>) -> OwnerTag {
        OwnerTag {
            name: name.to_string(),
            workspace,
            found,
            made: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag's id, when it exists already: only then can a connection carry it.
    pub fn id(&self) -> Option<Uuid> {
        self.found.as_ref().map(|t| t.tag_id)
    }

    /// The tag every desired body carries: the real one, or its placeholder (nil id).
    pub fn desired(&self) -> Tag {
        self.found.clone().unwrap_or_else(|| Tag {
            tag_id: Uuid::nil(),
            workspace_id: self.workspace,
            name: self.name.clone(),
            color: COLOR.to_string(),
        })
    }

    /// The real tag: as found, or made now (once per run; concurrent callers wait for that one
    /// try and share its result).
    pub async fn ensure(&self, client: &Client) -> Result<Tag, OwnerTagError> {
        if let Some(tag) = &self.found {
            return Ok(tag.clone());
        }
        let mut made = self.made.lock().await;
        if let Some(result) = made.as_ref() {
            return result.clone();
        }
        let result = self.make(client).await;
        *made = Some(result.clone());
        result
    }

    async fn make(&self, client: &Client) -> Result<Tag, OwnerTagError> {
        let request = TagCreateRequest {
            name: self.name.clone(),
            color: COLOR.to_string(),
            workspace_id: self.workspace,
        };
        match client.create_tag(&request).await {
            Ok(tag) => Ok(tag),
            Err(e) if e.status() == Some(409) => {
                let tags =
                    client
                        .tags(self.workspace)
                        .await
                        .map_err(|source| OwnerTagError::Read {
                            name: self.name.clone(),
                            source,
                        })?;
                find(&tags, self.workspace, &self.name)
                    .cloned()
                    .ok_or_else(|| OwnerTagError::Missing {
                        name: self.name.clone(),
                    })
            }
            Err(source) => Err(OwnerTagError::Create {
                name: self.name.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: u128, workspace: u128, name: &str) -> Tag {
        Tag {
            tag_id: Uuid::from_u128(id),
            workspace_id: Uuid::from_u128(workspace),
            name: name.into(),
            color: "000000".into(),
        }
    }

    #[test]
    fn found_by_exact_name_in_its_workspace() {
        let tags = [
            tag(1, 9, "Replicate:shops"),
            tag(2, 8, "replicate:shops"),
            tag(3, 9, "replicate:shops"),
        ];
        let ws = Uuid::from_u128(9);
        assert_eq!(
            find(&tags, ws, "replicate:shops").map(|t| t.tag_id),
            Some(Uuid::from_u128(3))
        );
        assert_eq!(find(&tags, ws, "replicate:shop"), None);
    }

    #[test]
    fn the_placeholder_until_it_is_made_then_filled_in() {
        let ws = Uuid::from_u128(9);
        let pending = OwnerTag::new("replicate:shops", ws, None);
        assert_eq!(pending.id(), None);
        let placeholder = pending.desired();
        assert!(is_placeholder(&placeholder));
        assert_eq!(
            (placeholder.name.as_str(), placeholder.color.as_str()),
            ("replicate:shops", COLOR)
        );

        let real = tag(7, 9, "replicate:shops");
        let other = tag(5, 9, "tenant");
        let mut tags = vec![other.clone(), placeholder];
        assert!(fill(&mut tags, &real));
        assert_eq!(tags, vec![other.clone(), real.clone()]);
        assert!(!fill(&mut tags, &real), "nothing left to fill");

        let known = OwnerTag::new("replicate:shops", ws, Some(real.clone()));
        assert_eq!(known.id(), Some(real.tag_id));
        assert_eq!(known.desired(), real);
    }
}

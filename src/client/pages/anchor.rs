//! The pure half of a listing: where each page of one reading of a list (a *pass*) starts,
//! whether a page holds an anchor of the page before it, and the merge of a pass's pages by id,
//! deleted items left out. The client ([`super`]) sends the requests; why a pass whose every
//! page is anchored misses nothing is written there.

use std::collections::HashSet;
use uuid::Uuid;

/// An item of a list endpoint, as a listing knows it.
pub trait Listed {
    /// The list is read with `includeDeleted=true` and its [`Listed::deleted`] items are left
    /// out of the result: a delete then leaves its row in place, so the pages after it do not
    /// move (Airbyte deletes a connection by setting its `status` to `deprecated`).
    const INCLUDE_DELETED: bool = false;

    fn id(&self) -> Uuid;

    /// Deleted, so not part of the result; it still anchors the page after it.
    fn deleted(&self) -> bool {
        false
    }
}

/// The shape of a pass: pages of `size` items, each starting `overlap` items before the end of
/// the one before it. `overlap` must be smaller than `size`.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub size: usize,
    pub overlap: usize,
}

impl Paging {
    /// How far apart the offsets of two full pages are.
    pub fn stride(self) -> usize {
        self.size.saturating_sub(self.overlap).max(1)
    }
}

/// What a page told its pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// A full page, joined to the one before it: the list goes on.
    More,
    /// A short page, joined to the one before it: the list ends here and the pass is whole.
    End,
    /// A page that holds none of the previous page's last `overlap` items: between the two
    /// reads, the list moved left by more than the overlap, and items may have been skipped.
    /// The pass cannot be trusted.
    Shifted,
}

/// One reading of a list from offset 0: its pages, in page order, merged by id.
pub struct Pass<T> {
    paging: Paging,
    /// Pages added so far.
    pages: usize,
    /// Where the next page starts: `overlap` items before the end of the last one, which is
    /// `stride` after it unless the server sent more than `size` items.
    next: usize,
    /// The items not deleted, each once, in the order first seen.
    items: Vec<T>,
    seen: HashSet<Uuid>,
    /// The ids of the last page's last `overlap` items.
    anchors: Vec<Uuid>,
}

impl<T: Listed> Pass<T> {
    pub fn new(paging: Paging) -> Self {
        Pass {
            paging,
            pages: 0,
            next: 0,
            items: Vec::new(),
            seen: HashSet::new(),
            anchors: Vec::new(),
        }
    }

    /// The offset of the page after those added so far.
    pub fn next_offset(&self) -> usize {
        self.next
    }

    /// The offset of the `k`-th page after those added so far, if the pages before it are
    /// full and no longer than `size`.
    pub fn offset_ahead(&self, k: usize) -> usize {
        self.next + k * self.paging.stride()
    }

    /// The items the result holds so far.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Adds the next page, read at [`Pass::next_offset`]. A page of a shifted list is not
    /// added: the pass is over. A page longer than `size` (a server that ignores `limit`)
    /// moves the next page's offset further than [`Pass::offset_ahead`] foresaw.
    pub fn add(&mut self, page: Vec<T>) -> Joined {
        if self.pages > 0 && !page.iter().any(|item| self.anchors.contains(&item.id())) {
            return Joined::Shifted;
        }
        let full = page.len() >= self.paging.size;
        self.next += page.len().saturating_sub(self.paging.overlap);
        self.anchors = page[page.len().saturating_sub(self.paging.overlap)..]
            .iter()
            .map(Listed::id)
            .collect();
        self.pages += 1;
        for item in page {
            // An item in two overlapping pages counts once, as first read.
            if self.seen.insert(item.id()) && !item.deleted() {
                self.items.push(item);
            }
        }
        if full { Joined::More } else { Joined::End }
    }

    /// The items not deleted, each once.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// An item numbered `.0`, deleted when `.1`.
    #[derive(Debug, Clone, Copy)]
    struct Item(u128, bool);

    impl Listed for Item {
        fn id(&self) -> Uuid {
            Uuid::from_u128(self.0)
        }
        fn deleted(&self) -> bool {
            self.1
        }
    }

    const SMALL: Paging = Paging {
        size: 5,
        overlap: 2,
    };

    /// A table row: what it shows, the pages read, the items deleted, how the pass ends.
    type Case = (
        &'static str,
        &'static [&'static [u128]],
        &'static [u128],
        Result<Vec<u128>, usize>,
    );

    /// How a pass over `pages` ends: the item numbers of a whole pass, or the page at which
    /// it shifted.
    fn pass(pages: &[&[u128]], deleted: &[u128]) -> Result<Vec<u128>, usize> {
        let mut pass = Pass::new(SMALL);
        for (k, page) in pages.iter().enumerate() {
            let items = page
                .iter()
                .map(|&n| Item(n, deleted.contains(&n)))
                .collect();
            match pass.add(items) {
                Joined::More => {}
                Joined::End => return Ok(pass.into_items().iter().map(|i| i.0).collect()),
                Joined::Shifted => return Err(k),
            }
        }
        panic!("the pages ended on a full page")
    }

    #[test]
    fn pages_start_overlap_items_before_the_end_of_the_one_before() {
        let api = Paging {
            size: 100,
            overlap: 10,
        };
        let pass = Pass::<Item>::new(api);
        let offsets: Vec<usize> = (0..4).map(|k| pass.offset_ahead(k)).collect();
        assert_eq!(offsets, [0, 90, 180, 270]);
        let mut pass = Pass::<Item>::new(SMALL);
        assert_eq!((pass.next_offset(), pass.offset_ahead(2)), (0, 6));
        pass.add((0..5).map(|n| Item(n, false)).collect());
        assert_eq!((pass.next_offset(), pass.offset_ahead(1)), (3, 6));
        // A server that ignored `limit`: the next page starts at the overlap before its end.
        pass.add((3..12).map(|n| Item(n, false)).collect());
        assert_eq!((pass.next_offset(), pass.offset_ahead(1)), (10, 13));
    }

    #[test]
    fn a_pass_is_whole_only_when_each_page_holds_an_anchor() {
        let cases: &[Case] = &[
            ("one short page", &[&[1, 2]], &[], Ok(vec![1, 2])),
            ("an empty list", &[&[]], &[], Ok(vec![])),
            (
                "a still list: overlapping items count once",
                &[&[0, 1, 2, 3, 4], &[3, 4, 5, 6, 7], &[6, 7, 8]],
                &[],
                Ok((0..9).collect()),
            ),
            (
                "a full last page, then its anchors alone",
                &[&[0, 1, 2, 3, 4], &[3, 4, 5, 6, 7], &[6, 7]],
                &[],
                Ok((0..8).collect()),
            ),
            (
                "one item removed before page 1: the other anchor holds",
                &[&[0, 1, 2, 3, 4], &[4, 5, 6, 7, 8], &[7, 8]],
                &[],
                Ok((0..9).collect()),
            ),
            (
                "two removed before page 1 (the overlap): no anchor",
                &[&[0, 1, 2, 3, 4], &[5, 6, 7, 8, 9], &[8, 9]],
                &[],
                Err(1),
            ),
            (
                "removed before page 2: no anchor there",
                &[&[0, 1, 2, 3, 4], &[3, 4, 5, 6, 7], &[9, 10]],
                &[],
                Err(2),
            ),
            (
                "an empty page after a full one",
                &[&[0, 1, 2, 3, 4], &[]],
                &[],
                Err(1),
            ),
            (
                "items added ahead (a right shift) only repeat",
                &[&[0, 1, 2, 3, 4], &[1, 2, 3, 4, 5], &[4, 5]],
                &[],
                Ok((0..6).collect()),
            ),
            (
                "deleted items are left out but still anchor",
                &[&[0, 1, 2, 3, 4], &[3, 4, 5, 6, 7], &[6, 7]],
                &[3, 4, 6],
                Ok(vec![0, 1, 2, 5, 7]),
            ),
            (
                "a page longer than asked for, then its anchors",
                &[&[0, 1, 2, 3, 4, 5, 6, 7], &[6, 7]],
                &[],
                Ok((0..8).collect()),
            ),
            (
                "the first page needs no anchor",
                &[&[7, 8, 9, 10, 11], &[10, 11]],
                &[],
                Ok(vec![7, 8, 9, 10, 11]),
            ),
        ];
        for (case, pages, deleted, expected) in cases {
            assert_eq!(&pass(pages, deleted), expected, "{case}");
        }
    }

    /// The argument of the module doc, tried: a list in a stable order where items are removed
    /// and added anywhere between any two reads, its pages read in a shuffled order of time (as
    /// a batch of parallel reads may be). Whenever a pass is whole, it holds every item that
    /// was in the list the whole time.
    #[test]
    fn a_whole_pass_holds_every_item_that_stayed() {
        let (mut whole, mut shifted, mut whole_with_removals) = (0, 0, 0);
        for seed in 0..500 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut list: Vec<u128> = (0..rng.u128(0..40)).collect();
            let mut next_id = 1_000;
            // The list at 30 moments; the item ids in every one of them stayed.
            let mut moments = vec![list.clone()];
            let mut removed = 0;
            for _ in 0..30 {
                for _ in 0..rng.usize(0..=1) {
                    if !list.is_empty() {
                        list.remove(rng.usize(..list.len()));
                        removed += 1;
                    }
                }
                for _ in 0..rng.usize(0..=2) {
                    list.insert(rng.usize(..=list.len()), next_id);
                    next_id += 1;
                }
                moments.push(list.clone());
            }
            let stayed: BTreeSet<u128> = moments[0]
                .iter()
                .filter(|id| moments.iter().all(|m| m.contains(id)))
                .copied()
                .collect();
            // Pages read 4 at a time, in any order within a batch.
            let mut times: Vec<usize> = (0..moments.len()).collect();
            for batch in times.chunks_mut(4) {
                rng.shuffle(batch);
            }

            let mut pass = Pass::new(SMALL);
            let outcome = (0..times.len()).find_map(|k| {
                let at = &moments[times[k]];
                let start = pass.next_offset().min(at.len());
                let end = (start + SMALL.size).min(at.len());
                let page = at[start..end].iter().map(|&n| Item(n, false)).collect();
                match pass.add(page) {
                    Joined::More => None,
                    other => Some(other),
                }
            });
            match outcome {
                Some(Joined::End) => {
                    let got: BTreeSet<u128> = pass.into_items().iter().map(|i| i.0).collect();
                    let missed: Vec<&u128> = stayed.difference(&got).collect();
                    assert!(missed.is_empty(), "seed {seed}: missed {missed:?}");
                    whole += 1;
                    if removed > 0 {
                        whole_with_removals += 1;
                    }
                }
                Some(Joined::Shifted) => shifted += 1,
                _ => {}
            }
        }
        // Both outcomes occur, and whole passes over lists that lost items are many: the check
        // above was put to the test.
        assert!(
            whole_with_removals > 200 && shifted > 100,
            "{whole} whole ({whole_with_removals} with removals), {shifted} shifted"
        );
    }
}

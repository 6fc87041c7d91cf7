//! Execute: the writes of `apply`, bounded and concurrent.
//!
//! Takes the preview's report and posts the body of every `create` row, at most `concurrency` at
//! once (the client's cap bounds the requests in flight across the run as well). A failed target
//! is a value in its row, never an early return: the other targets carry on.

use crate::client::Client;
use crate::report::events::{Reporter, WriteResult};
use crate::report::{Action, Mode, Outcome, Report};
use futures::{StreamExt, stream};
use std::sync::Arc;

/// Creates the copies the report's `create` rows describe and records each outcome.
pub async fn execute(
    report: &mut Report,
    client: &Client,
    concurrency: usize,
    reporter: &Arc<dyn Reporter>,
) {
    report.mode = Mode::Apply;
    let mut creates = Vec::new();
    for (i, row) in report.targets.iter_mut().enumerate() {
        row.outcome = Some(match row.action {
            Action::Unchanged => Outcome::Unchanged,
            Action::Error => Outcome::Failed,
            Action::Create | Action::Update => match row.body.take() {
                Some(body) => {
                    creates.push((i, body));
                    Outcome::NotRun
                }
                None => Outcome::Failed,
            },
        });
    }

    reporter.writes_started(creates.len() as u64);
    let mut results = stream::iter(creates)
        .map(|(i, body)| async move {
            let result = client.create_connection(&body).await;
            (i, body, result)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((i, body, result)) = results.next().await {
        let row = &mut report.targets[i];
        row.body = Some(body);
        match result {
            Ok(copy) => {
                row.outcome = Some(Outcome::Created);
                row.connection_id = Some(copy.connection_id);
                reporter.write_finished(WriteResult::Created);
            }
            Err(e) => {
                row.outcome = Some(Outcome::Failed);
                row.error = Some(e.to_string());
                reporter.write_finished(WriteResult::Failed);
            }
        }
    }
    reporter.writes_finished();
    report.tally();
}

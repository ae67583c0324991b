//! openraft's own storage conformance suite, run against the sled log store
//! and state machine (fresh on-disk database per case).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use openraft::{ErrorSubject, ErrorVerb};
use qu_raft::store::{self, LogStore, StateMachineStore};
use qu_raft::TypeConfig;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let io = |e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, e);
        let dir = tempfile::tempdir().map_err(io)?;
        let (log, sm, _local) = store::open(dir.path()).map_err(io)?;
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_stores_pass_the_openraft_storage_suite() {
    Suite::test_all(SledBuilder).await.expect("storage suite");
}

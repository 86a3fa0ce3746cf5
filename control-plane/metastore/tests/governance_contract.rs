//! The governance repository on both backends: thread numbering (also under concurrency),
//! filters and paging, comment threading, edit history, hiding and deletion, reactions,
//! mentions, posting settings, outbox messages in the same transaction, and cleanup with the
//! dataset; open issues and issue titles as search sees them.

mod common;

use common::Backend;
use weir_metastore::governance::*;
use weir_metastore::*;

contract_tests!(
    threads_are_numbered_filtered_and_updated,
    comments_thread_edit_react_and_delete,
    search_sees_open_issues_and_issue_titles,
);

async fn seed(metastore: &SqlMetastore) -> String {
    let owner = NewAccount {
        account: Account {
            id: "acc-owner".into(),
            name: "owner".into(),
            kind: AccountKind::User,
            display_name: "owner".into(),
            email: None,
            is_admin: false,
            created_at: 1,
        },
        password_hash: None,
    };
    metastore.create_account(owner).await.unwrap();
    for (id, name) in [("did:odf:a", "alpha"), ("did:odf:b", "beta")] {
        let entry = DatasetEntry {
            id: id.into(),
            owner_id: "acc-owner".into(),
            owner_name: "owner".into(),
            name: name.into(),
            kind: "root".into(),
            storage_location: "file:///x".into(),
            visibility: Visibility::Public,
            created_at: 1,
            head_hash: None,
            head_sequence: None,
        };
        metastore.create_dataset(&entry, &[]).await.unwrap();
    }
    "did:odf:a".into()
}

fn new_thread(n: usize, kind: ThreadKind, title: &str) -> NewThread {
    NewThread {
        id: ThreadId::generate(&format!("t{n}")),
        dataset_id: "did:odf:a".into(),
        kind,
        title: title.into(),
        author_id: "acc-owner".into(),
        labels: vec!["bug".into(), "data".into()],
        assignees: vec!["acc-owner".into()],
        body: NewComment {
            id: CommentId::generate(&format!("c{n}")),
            parent_id: None,
            author_id: "acc-owner".into(),
            body: format!("opening post {n}"),
            mentions: vec![],
        },
        created_at: 1000 + n as i64,
    }
}

fn message(id: &str) -> OutboxMessage {
    OutboxMessage {
        event_id: id.into(),
        subject: "weir.test.governance".into(),
        payload: "{}".into(),
    }
}

async fn threads_are_numbered_filtered_and_updated(backend: Backend) {
    let metastore = &backend.metastore;
    let dataset = seed(metastore).await;
    let first = metastore
        .create_thread(
            &new_thread(1, ThreadKind::Issue, "Gap in March"),
            &|number| vec![message(&format!("e{number}"))],
        )
        .await
        .unwrap();
    assert_eq!(first.number, 1);
    assert_eq!(first.state, ThreadState::Open);
    assert_eq!(first.labels, vec!["bug", "data"]);
    assert_eq!(metastore.pending_messages(10).await.unwrap().len(), 1);
    // Concurrent creations get distinct numbers.
    let mut tasks = Vec::new();
    for n in 2..=6 {
        let thread = new_thread(n, ThreadKind::Discussion, "Ideas");
        // One store, as one control plane uses it (PostgreSQL runs these in parallel).
        let store = metastore.clone();
        tasks.push(tokio::spawn(async move {
            store.create_thread(&thread, &|_| Vec::new()).await
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap().unwrap().number);
    }
    numbers.sort();
    assert_eq!(numbers, vec![2, 3, 4, 5, 6]);
    // Another dataset numbers from 1.
    let mut other = new_thread(7, ThreadKind::Issue, "Elsewhere");
    other.dataset_id = "did:odf:b".into();
    assert_eq!(
        metastore
            .create_thread(&other, &|_| Vec::new())
            .await
            .unwrap()
            .number,
        1
    );
    let mut missing = new_thread(8, ThreadKind::Issue, "Nowhere");
    missing.dataset_id = "did:odf:none".into();
    assert!(matches!(
        metastore.create_thread(&missing, &|_| Vec::new()).await,
        Err(MetastoreError::NotFound(_))
    ));

    let issues = ThreadFilter {
        kind: Some(ThreadKind::Issue),
        limit: 10,
        ..ThreadFilter::default()
    };
    let listed = metastore.list_threads(&dataset, &issues).await.unwrap();
    assert_eq!(listed.iter().map(|t| t.number).collect::<Vec<_>>(), vec![1]);
    let page = ThreadFilter {
        limit: 2,
        before_number: Some(5),
        ..ThreadFilter::default()
    };
    let listed = metastore.list_threads(&dataset, &page).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.number).collect::<Vec<_>>(),
        vec![4, 3]
    );

    let closed = metastore
        .update_thread(
            &first.id,
            &ThreadPatch {
                state: Some(ThreadState::Closed),
                locked: Some(true),
                labels: Some(vec!["wontfix".into()]),
                ..ThreadPatch::default()
            },
            5000,
            &[message("e2")],
        )
        .await
        .unwrap();
    assert_eq!(closed.state, ThreadState::Closed);
    assert!(closed.locked);
    assert_eq!(closed.labels, vec!["wontfix"]);
    assert_eq!(closed.assignees, vec!["acc-owner"]);
    assert_eq!(closed.title, "Gap in March");
    assert_eq!(closed.updated_at, 5000);
    let open_bugs = ThreadFilter {
        state: Some(ThreadState::Open),
        label: Some("bug".into()),
        limit: 10,
        ..ThreadFilter::default()
    };
    assert_eq!(
        metastore
            .list_threads(&dataset, &open_bugs)
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        metastore.thread(&dataset, 1).await.unwrap().unwrap().id,
        first.id
    );
    metastore.delete_thread(&first.id, &[]).await.unwrap();
    assert!(metastore.thread(&dataset, 1).await.unwrap().is_none());
    assert!(metastore.thread_by_id(&first.id).await.unwrap().is_none());

    assert_eq!(metastore.posting(&dataset).await.unwrap(), Posting::Readers);
    metastore
        .set_posting(&dataset, Posting::Maintainers)
        .await
        .unwrap();
    assert_eq!(
        metastore.posting(&dataset).await.unwrap(),
        Posting::Maintainers
    );
    // Deleting the dataset takes its threads along.
    metastore.delete_dataset(&dataset, &[]).await.unwrap();
    assert!(metastore.thread(&dataset, 2).await.unwrap().is_none());
}

async fn comments_thread_edit_react_and_delete(backend: Backend) {
    let metastore = &backend.metastore;
    seed(metastore).await;
    let thread = metastore
        .create_thread(&new_thread(1, ThreadKind::Issue, "Units"), &|_| Vec::new())
        .await
        .unwrap();
    let opening = metastore.comments(&thread.id).await.unwrap();
    assert_eq!(opening.len(), 1);
    assert_eq!(opening[0].body, "opening post 1");
    let reply = NewComment {
        id: CommentId::generate("r1"),
        parent_id: Some(opening[0].id.clone()),
        author_id: "acc-reader".into(),
        body: "@owner which unit?".into(),
        mentions: vec!["acc-owner".into()],
    };
    let added = metastore
        .add_comment(&thread.id, &reply, 2000, &[message("c1")])
        .await
        .unwrap();
    assert_eq!(added.parent_id.as_ref(), Some(&opening[0].id));
    assert_eq!(added.mentions, vec!["acc-owner"]);
    // A parent from another thread is refused.
    let other = metastore
        .create_thread(&new_thread(2, ThreadKind::Discussion, "Other"), &|_| {
            Vec::new()
        })
        .await
        .unwrap();
    let stray = NewComment {
        id: CommentId::generate("r2"),
        parent_id: Some(opening[0].id.clone()),
        ..reply.clone()
    };
    assert!(matches!(
        metastore.add_comment(&other.id, &stray, 2001, &[]).await,
        Err(MetastoreError::NotFound(_))
    ));
    assert!(metastore.comment(&stray.id).await.unwrap().is_none());

    let edited = metastore
        .edit_comment(&added.id, "which unit, mm?", &[], "acc-reader", 3000, &[])
        .await
        .unwrap();
    let edited = metastore
        .edit_comment(
            &edited.id,
            "which unit, mm or in?",
            &[],
            "acc-reader",
            4000,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(edited.edited_at, Some(4000));
    assert!(edited.mentions.is_empty());
    let history = metastore.comment_history(&added.id).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        vec!["@owner which unit?", "which unit, mm?"]
    );
    assert_eq!(history[1].replaced_at, 4000);

    for (account, reaction) in [
        ("acc-a", "+1"),
        ("acc-b", "+1"),
        ("acc-a", "eyes"),
        ("acc-a", "+1"),
    ] {
        metastore
            .react(&added.id, account, reaction, true)
            .await
            .unwrap();
    }
    let reacted = metastore
        .react(&added.id, "acc-a", "eyes", false)
        .await
        .unwrap();
    assert_eq!(
        reacted.reactions,
        [(
            "+1".to_string(),
            vec!["acc-a".to_string(), "acc-b".to_string()]
        )]
        .into_iter()
        .collect()
    );
    let hidden = metastore
        .set_comment_hidden(&added.id, true, &[])
        .await
        .unwrap();
    assert!(hidden.hidden);
    metastore.delete_comment(&added.id, &[]).await.unwrap();
    let deleted = metastore.comment(&added.id).await.unwrap().unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.body, "");
    assert!(deleted.reactions.is_empty());
    assert!(
        metastore
            .comment_history(&added.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        metastore.delete_comment(&added.id, &[]).await,
        Err(MetastoreError::NotFound(_))
    ));
    assert!(matches!(
        metastore
            .edit_comment(&added.id, "again", &[], "acc-reader", 5000, &[])
            .await,
        Err(MetastoreError::NotFound(_))
    ));
    let unknown = ThreadId::generate("nothread");
    assert!(matches!(
        metastore.add_comment(&unknown, &reply, 1, &[]).await,
        Err(MetastoreError::NotFound(_))
    ));
}

async fn search_sees_open_issues_and_issue_titles(backend: Backend) {
    let metastore = &backend.metastore;
    seed(metastore).await;
    for n in 1..=2 {
        metastore
            .create_thread(
                &new_thread(n, ThreadKind::Issue, "Negative rainfall values"),
                &|_| Vec::new(),
            )
            .await
            .unwrap();
    }
    metastore
        .create_thread(
            &new_thread(3, ThreadKind::Discussion, "Seasonal trends"),
            &|_| Vec::new(),
        )
        .await
        .unwrap();
    let names = |expression: &'static str| async move {
        let filter = DatasetFilter {
            expression: Some(search::parse(expression).unwrap()),
            limit: 10,
            ..Default::default()
        };
        metastore
            .list_datasets(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("openIssues = 2").await, vec!["alpha"]);
    assert_eq!(names("openIssues = 0").await, vec!["beta"]);
    assert_eq!(names("'negative rainfall'").await, vec!["alpha"]);
    // Discussions are not issues.
    assert!(names("seasonal").await.is_empty());
}

//! Issues and discussions over REST and GraphQL, on SQLite and PostgreSQL: the permission
//! matrix (anonymous, outsider, reader, author, maintainer) for every route, moderation, edit
//! history, reactions, mentions, posting settings, bad input, and the bus events of each change.

mod common;

use std::time::Duration;

use common::{MANIFEST, Node, assert_error, fresh_postgres, start, start_on};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct People {
    reader: String,
    author: String,
    maintainer: String,
    outsider: String,
}

async fn setup(node: &Node) -> People {
    assert_eq!(
        node.create_dataset(&node.admin, MANIFEST).await.0,
        StatusCode::CREATED
    );
    let people = People {
        reader: node.user("reader").await,
        author: node.user("author").await,
        maintainer: node.user("maintainer").await,
        outsider: node.user("outsider").await,
    };
    for (account, role) in [
        ("reader", "reader"),
        ("author", "reader"),
        ("maintainer", "maintainer"),
    ] {
        let (status, body) = node
            .send_json(
                Method::PUT,
                &format!("/datasets/admin/readings/roles/{account}"),
                Some(&node.admin),
                json!({"role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    people
}

fn status_of(answer: &(StatusCode, Value)) -> u16 {
    answer.0.as_u16()
}

#[tokio::test]
async fn permission_matrix_on_sqlite() {
    permission_matrix(start(None).await).await;
}

#[tokio::test]
async fn permission_matrix_on_postgres() {
    permission_matrix(start_on(None, Some(fresh_postgres().await)).await).await;
}

async fn permission_matrix(node: Node) {
    let p = setup(&node).await;
    let mut events = node
        .control_plane
        .bus
        .subscribe(None, "dataset.>")
        .await
        .unwrap();
    let base = "/datasets/admin/readings";
    let issue =
        json!({"title": "Gap in March", "body": "Readings stop on the 3rd. cc @maintainer"});
    // Who may see and open.
    for (token, expected) in [
        (None, 404),
        (Some(p.outsider.as_str()), 404),
        (Some(p.reader.as_str()), 200),
    ] {
        let answer = node.get(&format!("{base}/issues"), token).await;
        assert_eq!(status_of(&answer), expected, "{answer:?}");
    }
    for token in [None, Some(p.outsider.as_str())] {
        assert_error(
            &node
                .send_json(
                    Method::POST,
                    &format!("{base}/issues"),
                    token,
                    issue.clone(),
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            "admin/readings",
        );
    }
    let (status, opened) = node
        .send_json(
            Method::POST,
            &format!("{base}/issues"),
            Some(&p.author),
            issue.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!(opened["number"], 1);
    assert_eq!(opened["state"], "open");
    let opening = opened["comments"][0].clone();
    assert_eq!(opening["mentions"].as_array().unwrap().len(), 1, "{opened}");
    // Readers set no labels.
    let labelled = json!({"title": "t", "body": "b", "labels": ["bug"]});
    assert_error(
        &node
            .send_json(
                Method::POST,
                &format!("{base}/issues"),
                Some(&p.reader),
                labelled.clone(),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "maintainers",
    );
    let (status, discussion) = node
        .send_json(
            Method::POST,
            &format!("{base}/discussions"),
            Some(&p.maintainer),
            labelled,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{discussion}");
    assert_eq!(discussion["number"], 2);
    // The issue is not a discussion, and the other way round.
    assert_eq!(
        node.get(&format!("{base}/discussions/1"), Some(&p.reader))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        node.get(&format!("{base}/issues/2"), Some(&p.reader))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        node.get(&format!("{base}/issues/1"), Some(&p.reader))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        node.get(&format!("{base}/issues/1"), None).await.0,
        StatusCode::NOT_FOUND
    );

    // Titles and state: author or maintainer; lock and labels: maintainers.
    let thread = format!("{base}/issues/1");
    for (token, change, expected) in [
        (&p.reader, json!({"title": "Mine now"}), 403),
        (&p.outsider, json!({"title": "Mine now"}), 404),
        (&p.author, json!({"title": "Gap in March 2026"}), 200),
        (&p.author, json!({"labels": ["bug"]}), 403),
        (&p.author, json!({"locked": true}), 403),
        (
            &p.maintainer,
            json!({"labels": ["bug", "data"], "assignees": ["maintainer"]}),
            200,
        ),
        (&p.maintainer, json!({"assignees": ["nobody-here"]}), 400),
        (&p.author, json!({"state": "closed"}), 200),
        (&p.maintainer, json!({"state": "open"}), 200),
        (&p.maintainer, json!({"state": "maybe"}), 400),
    ] {
        let answer = node
            .send_json(Method::PATCH, &thread, Some(token), change.clone())
            .await;
        assert_eq!(status_of(&answer), expected, "{change}: {answer:?}");
    }
    // Comments: readers comment; replies thread; locked threads take only maintainers.
    let comments = format!("{thread}/comments");
    let (status, first) = node
        .send_json(
            Method::POST,
            &comments,
            Some(&p.reader),
            json!({"body": "Same here, @author"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_id = first["id"].as_str().unwrap().to_string();
    let (status, reply) = node
        .send_json(
            Method::POST,
            &comments,
            Some(&p.author),
            json!({"body": "Thanks", "parentId": first_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["parentId"], first_id.as_str());
    for (token, expected) in [(None, 404), (Some(p.outsider.as_str()), 404)] {
        let answer = node
            .send_json(Method::POST, &comments, token, json!({"body": "x"}))
            .await;
        assert_eq!(status_of(&answer), expected, "{answer:?}");
    }
    node.send_json(
        Method::PATCH,
        &thread,
        Some(&p.maintainer),
        json!({"locked": true}),
    )
    .await;
    assert_error(
        &node
            .send_json(
                Method::POST,
                &comments,
                Some(&p.reader),
                json!({"body": "x"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "locked",
    );
    assert_eq!(
        node.send_json(
            Method::POST,
            &comments,
            Some(&p.maintainer),
            json!({"body": "Locked: fixed upstream"})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    node.send_json(
        Method::PATCH,
        &thread,
        Some(&p.maintainer),
        json!({"locked": false}),
    )
    .await;

    // Edits: only the author; the history keeps earlier bodies.
    let comment = format!("{base}/comments/{first_id}");
    for (token, expected) in [
        (&p.maintainer, 403),
        (&p.author, 403),
        (&p.outsider, 404),
        (&p.reader, 200),
    ] {
        let answer = node
            .send_json(
                Method::PATCH,
                &comment,
                Some(token),
                json!({"body": "Same here since the 3rd"}),
            )
            .await;
        assert_eq!(status_of(&answer), expected, "{answer:?}");
    }
    let (status, history) = node
        .get(&format!("{comment}/history"), Some(&p.author))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history[0]["body"], "Same here, @author");
    // Moderation: maintainers hide; readers see the place, not the text.
    assert_eq!(
        node.send_json(
            Method::PATCH,
            &comment,
            Some(&p.author),
            json!({"hidden": true})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        node.send_json(
            Method::PATCH,
            &comment,
            Some(&p.maintainer),
            json!({"hidden": true})
        )
        .await
        .0,
        StatusCode::OK
    );
    let seen = |answer: (StatusCode, Value)| answer.1["comments"][1]["body"].clone();
    assert_eq!(seen(node.get(&thread, Some(&p.reader)).await), "");
    assert_eq!(
        seen(node.get(&thread, Some(&p.maintainer)).await),
        "Same here since the 3rd"
    );
    assert_eq!(
        node.get(&format!("{comment}/history"), Some(&p.author))
            .await
            .1,
        json!([])
    );

    // Reactions: signed-in readers; a known set.
    let reactions = format!(
        "{base}/comments/{}/reactions",
        opening["id"].as_str().unwrap()
    );
    for (token, reaction, expected) in [
        (Some(p.reader.as_str()), "+1", 200),
        (Some(p.maintainer.as_str()), "+1", 200),
        (Some(p.reader.as_str()), "+1", 200),
        (Some(p.reader.as_str()), "tada", 400),
        (None, "+1", 404),
        (Some(p.outsider.as_str()), "+1", 404),
    ] {
        let answer = node
            .call(Method::PUT, &format!("{reactions}/{reaction}"), token, None)
            .await;
        assert_eq!(status_of(&answer), expected, "{reaction}: {answer:?}");
    }
    let (_, reacted) = node
        .call(
            Method::DELETE,
            &format!("{reactions}/+1"),
            Some(&p.maintainer),
            None,
        )
        .await;
    assert_eq!(
        reacted["reactions"]["+1"].as_array().unwrap().len(),
        1,
        "{reacted}"
    );

    // Deletion: comments by their author or a maintainer; threads by maintainers.
    let reply_url = format!("{base}/comments/{}", reply["id"].as_str().unwrap());
    assert_eq!(
        node.call(Method::DELETE, &reply_url, Some(&p.reader), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        node.call(Method::DELETE, &reply_url, Some(&p.author), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        node.call(Method::DELETE, &reply_url, Some(&p.author), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let discussion_url = format!("{base}/discussions/2");
    assert_eq!(
        node.call(Method::DELETE, &discussion_url, Some(&p.author), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        node.call(Method::DELETE, &discussion_url, Some(&p.maintainer), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );

    // Posting settings: maintainers narrow who may post.
    let settings = format!("{base}/governance");
    assert_eq!(
        node.get(&settings, Some(&p.reader)).await.1,
        json!({"posting": "readers"})
    );
    assert_eq!(
        node.send_json(
            Method::PUT,
            &settings,
            Some(&p.reader),
            json!({"posting": "maintainers"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        node.send_json(
            Method::PUT,
            &settings,
            Some(&p.maintainer),
            json!({"posting": "maintainers"})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_error(
        &node
            .send_json(
                Method::POST,
                &comments,
                Some(&p.reader),
                json!({"body": "x"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "maintainer",
    );

    // Every change went out on the bus, in order.
    let mut kinds = Vec::new();
    while let Ok(Some(Ok(delivery))) =
        tokio::time::timeout(Duration::from_secs(2), events.next()).await
    {
        let event = serde_json::to_value(&delivery.envelope.event).unwrap();
        let kind = event["type"].as_str().unwrap().to_string();
        if kind != "role-changed" && kind != "block-committed" {
            kinds.push(match event["action"].as_str() {
                Some(action) => format!("{kind}:{action}"),
                None => kind,
            });
        }
        delivery.ack().await.unwrap();
    }
    assert_eq!(
        kinds,
        [
            "issue-opened",
            "discussion-opened",
            "thread-changed:edited",
            "thread-changed:labeled",
            "thread-changed:assigned",
            "thread-changed:closed",
            "thread-changed:reopened",
            "comment-added",
            "comment-added",
            "thread-changed:locked",
            "comment-added",
            "thread-changed:unlocked",
            "comment-changed:edited",
            "comment-changed:hidden",
            "comment-changed:deleted",
            "thread-changed:deleted",
        ]
    );
}

#[tokio::test]
async fn public_datasets_bad_input_and_graphql() {
    let node = start(None).await;
    let p = setup(&node).await;
    node.send_json(
        Method::PUT,
        "/datasets/admin/readings/visibility",
        Some(&node.admin),
        json!({"visibility": "public"}),
    )
    .await;
    let base = "/datasets/admin/readings";
    // Anyone reads a public dataset's issues; posting needs an account.
    assert_eq!(
        node.get(&format!("{base}/issues"), None).await.0,
        StatusCode::OK
    );
    assert_error(
        &node
            .send_json(
                Method::POST,
                &format!("{base}/issues"),
                None,
                json!({"title": "t", "body": "b"}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "sign in",
    );
    let (status, _) = node
        .send_json(
            Method::POST,
            &format!("{base}/issues"),
            Some(&p.outsider),
            json!({"title": "From outside", "body": "b"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (body, needle) in [
        (json!({"title": "", "body": "b"}), "title"),
        (json!({"title": "t", "body": "  "}), "body"),
        (json!({"title": "t\u{7}", "body": "b"}), "control"),
        (json!({"title": "t", "body": "x".repeat(70_000)}), "at most"),
        (json!({"title": "t"}), "body"),
        (json!({"title": "t", "body": "b", "colour": 1}), "colour"),
    ] {
        assert_error(
            &node
                .send_json(
                    Method::POST,
                    &format!("{base}/issues"),
                    Some(&p.reader),
                    body,
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            needle,
        );
    }
    assert_eq!(
        node.get(&format!("{base}/widgets"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        node.get(&format!("{base}/issues/99"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_error(
        &node
            .send_json(
                Method::POST,
                &format!("{base}/issues/1/comments"),
                Some(&p.reader),
                json!({"body": "b", "parentId": "'; DROP"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "parentId",
    );
    assert_eq!(
        node.send_json(
            Method::PATCH,
            &format!("{base}/comments/cmt_nope"),
            Some(&p.reader),
            json!({"body": "b"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // Search sees open issues and their titles.
    let (_, found) = node
        .get("/datasets?search=openIssues%20%3E%200", None)
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let (_, found) = node.get("/datasets?search=outside", None).await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");

    // GraphQL: the same operations and checks.
    let graphql = |token: Option<String>, query: String| {
        let node = &node;
        async move {
            node.send_json(
                Method::POST,
                "/graphql",
                token.as_deref(),
                json!({"query": query}),
            )
            .await
            .1
        }
    };
    let opened = graphql(
        Some(p.reader.clone()),
        r#"mutation { openThread(account: "admin", name: "readings", kind: "discussion", title: "Units?", body: "mm or in?") }"#.into(),
    )
    .await;
    assert_eq!(opened["data"]["openThread"]["number"], 2, "{opened}");
    let added = graphql(
        Some(p.author.clone()),
        r#"mutation { addComment(account: "admin", name: "readings", number: 2, body: "mm") }"#
            .into(),
    )
    .await;
    assert_eq!(added["data"]["addComment"]["body"], "mm", "{added}");
    let refused = graphql(
        Some(p.author.clone()),
        r#"mutation { changeThread(account: "admin", name: "readings", number: 2, locked: true) }"#
            .into(),
    )
    .await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("maintainer"),
        "{refused}"
    );
    let listed = graphql(
        None,
        r#"{ datasetThreads(account: "admin", name: "readings", kind: "discussion") }"#.into(),
    )
    .await;
    assert_eq!(
        listed["data"]["datasetThreads"][0]["title"], "Units?",
        "{listed}"
    );
    let thread = graphql(
        None,
        r#"{ datasetThread(account: "admin", name: "readings", number: 2) }"#.into(),
    )
    .await;
    assert_eq!(
        thread["data"]["datasetThread"]["comments"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{thread}"
    );
}

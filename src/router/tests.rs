//! Behaviour of [`Router::route`] and [`Router::insert`] against KrakenD CE (gin + lura).

use super::*;

fn router(routes: &[(&str, &str)]) -> Router<String> {
    router_with(RouterOptions::default(), routes)
}

fn router_with(opts: RouterOptions, routes: &[(&str, &str)]) -> Router<String> {
    let mut r = Router::new(opts);
    for (m, p) in routes {
        if let Err(e) = r.insert(m, p, format!("{m} {p}")) {
            panic!("insert {m} {p}: {e}");
        }
    }
    r
}

/// `(value, params)` of a match, or a description of what came back instead.
fn found(
    r: &Router<String>,
    method: &str,
    path: &str,
) -> Result<(String, Vec<(String, String)>), String> {
    match r.route(method, path, None) {
        Route::Found { value, params } => Ok((
            value.clone(),
            params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )),
        other => Err(format!("{other:?}")),
    }
}

fn p(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn params_are_extracted_in_path_order() {
    let r = router(&[("GET", "/users/{id}/posts/{post}")]);
    assert_eq!(
        found(&r, "GET", "/users/42/posts/7"),
        Ok((
            "GET /users/{id}/posts/{post}".into(),
            vec![p("id", "42"), p("post", "7")]
        ))
    );
}

#[test]
fn static_segment_beats_param_and_backtracks_to_it() {
    let r = router(&[
        ("GET", "/users/new"),
        ("GET", "/users/{id}"),
        ("GET", "/users/new/x"),
    ]);
    assert_eq!(
        found(&r, "GET", "/users/new").map(|f| f.0),
        Ok("GET /users/new".into())
    );
    assert_eq!(
        found(&r, "GET", "/users/newer").map(|f| f.1),
        Ok(vec![p("id", "newer")])
    );
    assert_eq!(
        found(&r, "GET", "/users/5").map(|f| f.0),
        Ok("GET /users/{id}".into())
    );
    let deep = router(&[("GET", "/a/b/c"), ("GET", "/a/{x}/d")]);
    assert_eq!(
        found(&deep, "GET", "/a/b/d").map(|f| f.1),
        Ok(vec![p("x", "b")])
    );
}

#[test]
fn param_does_not_match_an_empty_segment() {
    let r = router_with(
        RouterOptions {
            redirect_trailing_slash: false,
            redirect_fixed_path: false,
            ..Default::default()
        },
        &[("GET", "/users/{id}")],
    );
    assert!(matches!(r.route("GET", "/users/", None), Route::NotFound));
    assert!(matches!(r.route("GET", "/users//", None), Route::NotFound));
}

#[test]
fn unknown_path_is_not_found() {
    let r = router(&[("GET", "/a")]);
    assert!(matches!(r.route("GET", "/b", None), Route::NotFound));
    assert!(matches!(r.route("GET", "*", None), Route::NotFound));
    assert!(matches!(r.route("GET", "", None), Route::NotFound));
}

#[test]
fn matching_is_case_sensitive() {
    let r = router_with(
        RouterOptions {
            redirect_fixed_path: false,
            ..Default::default()
        },
        &[("GET", "/static")],
    );
    assert!(matches!(r.route("GET", "/Static", None), Route::NotFound));
}

#[test]
fn other_method_gives_405_with_allow_in_registration_order() {
    let r = router(&[
        ("GET", "/h"),
        ("POST", "/x"),
        ("GET", "/x"),
        ("DELETE", "/x/{id}"),
    ]);
    match r.route("PUT", "/x", None) {
        Route::MethodNotAllowed { allow } => assert_eq!(allow, "GET, POST"),
        other => panic!("{other:?}"),
    }
    // HEAD has no tree in KrakenD CE: straight to the 405 check.
    match r.route("HEAD", "/x", None) {
        Route::MethodNotAllowed { allow } => assert_eq!(allow, "GET, POST"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(r.route("PUT", "/nope", None), Route::NotFound));
}

#[test]
fn method_not_allowed_can_be_disabled() {
    let r = router_with(
        RouterOptions {
            handle_method_not_allowed: false,
            ..Default::default()
        },
        &[("GET", "/x")],
    );
    assert!(matches!(r.route("POST", "/x", None), Route::NotFound));
}

#[test]
fn allowed_methods_are_sorted_per_template() {
    let r = router(&[("POST", "/x"), ("GET", "/x"), ("DELETE", "/x/{id}")]);
    assert_eq!(r.allowed_methods("/x"), vec!["GET", "POST"]);
    assert_eq!(r.allowed_methods("/x/{id}"), vec!["DELETE"]);
    assert!(r.allowed_methods("/y").is_empty());
    assert_eq!(r.templates().collect::<Vec<_>>(), vec!["/x", "/x/{id}"]);
}

fn redirect(
    r: &Router<String>,
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Option<(u16, String)> {
    match r.route(method, path, query) {
        Route::Redirect { status, location } => Some((status, location)),
        _ => None,
    }
}

#[test]
fn trailing_slash_redirects_both_ways_301_for_get_307_otherwise() {
    let r = router(&[("GET", "/foo"), ("POST", "/bar/"), ("GET", "/u/{id}")]);
    assert_eq!(
        redirect(&r, "GET", "/foo/", Some("a=1")),
        Some((301, "/foo?a=1".into()))
    );
    assert_eq!(
        redirect(&r, "POST", "/bar", None),
        Some((307, "/bar/".into()))
    );
    assert_eq!(
        redirect(&r, "GET", "/u/5/", None),
        Some((301, "/u/5".into()))
    );
    assert_eq!(
        redirect(&r, "GET", "/foo/", Some("")),
        Some((301, "/foo?".into()))
    );
}

#[test]
fn trailing_slash_redirect_uses_x_forwarded_prefix() {
    let r = router(&[("GET", "/foo")]);
    match r.route_with_prefix("GET", "/foo/", None, Some("/api/")) {
        Route::Redirect { status, location } => {
            assert_eq!((status, location.as_str()), (301, "/api/foo"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_redirect_for_root_or_connect_or_method_without_tree() {
    let r = router(&[("GET", "/foo"), ("CONNECT", "/c")]);
    assert!(matches!(r.route("CONNECT", "/c/", None), Route::NotFound));
    // HEAD has no tree, GET does not match "/foo/" exactly: 404, not a redirect.
    assert!(matches!(r.route("HEAD", "/foo/", None), Route::NotFound));
    let root = router(&[("GET", "/x/")]);
    assert!(matches!(root.route("GET", "/", None), Route::NotFound));
}

#[test]
fn fixed_path_redirects_case_double_slash_and_dotdot() {
    let r = router(&[
        ("GET", "/static"),
        ("GET", "/Users/{id}/Posts"),
        ("PUT", "/a/b"),
    ]);
    assert_eq!(
        redirect(&r, "GET", "/StAtic", Some("q=1")),
        Some((301, "/static?q=1".into()))
    );
    assert_eq!(
        redirect(&r, "GET", "/users/AbC/posts", None),
        Some((301, "/Users/AbC/Posts".into()))
    );
    assert_eq!(
        redirect(&r, "PUT", "/a//b", None),
        Some((307, "/a/b".into()))
    );
    assert_eq!(
        redirect(&r, "PUT", "/x/../a/./b", None),
        Some((307, "/a/b".into()))
    );
    // Fixed path also fixes a trailing slash together with the case.
    assert_eq!(
        redirect(&r, "GET", "/STATIC/", None),
        Some((301, "/static".into()))
    );
}

#[test]
fn fixed_path_fixes_trailing_slash_even_when_that_redirect_is_disabled() {
    let r = router_with(
        RouterOptions {
            redirect_trailing_slash: false,
            ..Default::default()
        },
        &[("GET", "/foo")],
    );
    assert_eq!(
        redirect(&r, "GET", "/foo/", None),
        Some((301, "/foo".into()))
    );
}

#[test]
fn redirects_can_be_disabled() {
    let r = router_with(
        RouterOptions {
            redirect_trailing_slash: false,
            redirect_fixed_path: false,
            ..Default::default()
        },
        &[("GET", "/foo")],
    );
    assert!(matches!(r.route("GET", "/foo/", None), Route::NotFound));
    assert!(matches!(r.route("GET", "/FOO", None), Route::NotFound));
    // The 405 check still runs on the exact path.
    assert!(matches!(
        r.route("POST", "/foo", None),
        Route::MethodNotAllowed { .. }
    ));
}

#[test]
fn redirect_location_is_reescaped() {
    let r = router(&[("GET", "/a b/{x}")]);
    assert_eq!(
        redirect(&r, "GET", "/a%20b/%C3%A9/", None),
        Some((301, "/a%20b/%C3%A9".into()))
    );
}

#[test]
fn conflicts_are_rejected_naming_both_routes() {
    let mut r: Router<()> = Router::new(RouterOptions::default());
    assert!(r.insert("GET", "/user/{userid}", ()).is_ok());
    let err = r.insert("GET", "/user/{iduser}/some", ()).map_err(|e| e.0);
    assert!(
        err.as_ref().is_err_and(
            |e| e.contains("GET /user/{iduser}/some") && e.contains("GET /user/{userid}")
        ),
        "{err:?}"
    );
    let dup = r.insert("GET", "/user/{userid}", ()).map_err(|e| e.0);
    assert!(
        dup.as_ref()
            .is_err_and(|e| e.contains("already registered")),
        "{dup:?}"
    );
    // Different methods are different gin trees: no conflict.
    assert!(r.insert("POST", "/user/{other}", ()).is_ok());
    // Static beside a param is fine in the gin CE uses.
    assert!(r.insert("GET", "/user/me", ()).is_ok());
}

#[test]
fn invalid_templates_are_rejected_with_the_route_named() {
    let mut r: Router<()> = Router::new(RouterOptions::default());
    let e = r.insert("GET", "/a/:id", ()).map_err(|e| e.0);
    assert!(
        e.as_ref()
            .is_err_and(|m| m.starts_with("GET /a/:id: colons")),
        "{e:?}"
    );
    assert!(r.insert("GET", "/a/*", ()).is_err());
    assert!(r.insert("GET", "/a*/b", ()).is_err());
}

#[test]
fn disable_rest_allows_a_placeholder_inside_the_last_segment() {
    let opts = RouterOptions {
        disable_rest: true,
        ..Default::default()
    };
    let r = router_with(
        opts,
        &[
            ("GET", "/file.{ext}"),
            ("GET", "/file.json"),
            ("GET", "/d/{id}"),
        ],
    );
    assert_eq!(
        found(&r, "GET", "/file.xml").map(|f| f.1),
        Ok(vec![p("ext", "xml")])
    );
    assert_eq!(
        found(&r, "GET", "/file.json").map(|f| f.0),
        Ok("GET /file.json".into())
    );
    assert!(matches!(r.route("GET", "/file.", None), Route::NotFound));
    assert_eq!(
        found(&r, "GET", "/d/7").map(|f| f.1),
        Ok(vec![p("id", "7")])
    );
    let mut strict: Router<()> = Router::new(RouterOptions::default());
    assert!(strict.insert("GET", "/{id}.json", ()).is_err());
}

#[test]
fn prefix_placeholders_with_different_names_conflict() {
    let mut r: Router<()> = Router::new(RouterOptions {
        disable_rest: true,
        ..Default::default()
    });
    assert!(r.insert("GET", "/f.{a}", ()).is_ok());
    assert!(r.insert("GET", "/f.{b}", ()).is_err());
    assert!(r.insert("GET", "/f.j{b}", ()).is_ok());
    assert_eq!(
        found_unit(&r, "/f.json"),
        Some(vec![("b".to_string(), "son".to_string())]),
        "longest static prefix wins, as gin's static bytes do"
    );
}

fn found_unit(r: &Router<()>, path: &str) -> Option<Vec<(String, String)>> {
    match r.route("GET", path, None) {
        Route::Found { params, .. } => Some(
            params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ),
        _ => None,
    }
}

#[test]
fn encoded_space_is_decoded_and_accepted() {
    let r = router(&[("GET", "/users/{id}")]);
    assert_eq!(
        found(&r, "GET", "/users/a%20b").map(|f| f.1),
        Ok(vec![p("id", "a b")])
    );
}

#[test]
fn encoded_slash_splits_the_path_before_matching() {
    let r = router(&[("GET", "/users/{id}"), ("GET", "/users/{id}/{sub}")]);
    assert!(matches!(
        r.route("GET", "/users/a%2Fb", None),
        Route::Found { .. }
    ));
    assert_eq!(
        found(&r, "GET", "/users/a%2Fb").map(|f| f.1),
        Ok(vec![p("id", "a"), p("sub", "b")])
    );
    let single = router(&[("GET", "/users/{id}")]);
    assert!(matches!(
        single.route("GET", "/users/a%2Fb", None),
        Route::NotFound
    ));
}

#[test]
fn double_encoded_params_are_rejected_as_encoded_url_params() {
    let r = router(&[("GET", "/users/{id}")]);
    for raw in [
        "/users/a%252Fb",
        "/users/%2520",
        "/users/a%3Fb",
        "/users/a%23b",
    ] {
        match r.route("GET", raw, None) {
            Route::BadParam { message } => {
                assert_eq!(message, "error: encoded url params", "{raw}")
            }
            other => panic!("{raw}: {other:?}"),
        }
    }
}

#[test]
fn decoded_param_with_bad_escape_reports_go_error() {
    let r = router(&[("GET", "/users/{id}")]);
    match r.route("GET", "/users/100%25", None) {
        Route::BadParam { message } => assert_eq!(message, "error: invalid URL escape \"%\""),
        other => panic!("{other:?}"),
    }
    match r.route("GET", "/users/%25zz", None) {
        Route::BadParam { message } => assert_eq!(message, "error: invalid URL escape \"%zz\""),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_escape_in_the_raw_path_is_malformed() {
    let r = router(&[("GET", "/users/{id}")]);
    assert!(matches!(
        r.route("GET", "/users/%zz", None),
        Route::MalformedPath
    ));
}

#[test]
fn disable_path_decoding_passes_encoded_params_through() {
    let r = router_with(
        RouterOptions {
            disable_path_decoding: true,
            ..Default::default()
        },
        &[("GET", "/users/{id}")],
    );
    assert_eq!(
        found(&r, "GET", "/users/a%252Fb").map(|f| f.1),
        Ok(vec![p("id", "a%2Fb")])
    );
    assert_eq!(
        found(&r, "GET", "/users/a%3Fb").map(|f| f.1),
        Ok(vec![p("id", "a?b")])
    );
}

#[test]
fn remove_extra_slash_cleans_before_matching() {
    let r = router_with(
        RouterOptions {
            remove_extra_slash: true,
            ..Default::default()
        },
        &[("GET", "/a/{x}")],
    );
    assert_eq!(
        found(&r, "GET", "//a//b").map(|f| f.1),
        Ok(vec![p("x", "b")])
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn route_never_panics(
            method in "(GET|POST|PUT|HEAD|CONNECT|OPTIONS|[A-Z]{0,6})",
            path in "[/a-zA-Z0-9%.{}?#é _-]{0,40}",
            query in proptest::option::of("[a-z=&%é]{0,10}"),
            prefix in proptest::option::of("[/a-z.$]{0,10}"),
        ) {
            let r = router_with(
                RouterOptions { disable_rest: true, ..Default::default() },
                &[("GET", "/"), ("GET", "/users/{id}"), ("GET", "/users/new/"), ("POST", "/a/b/{c}"),
                  ("GET", "/file.{ext}"), ("PUT", "/Files/{x}/Z")],
            );
            let _ = r.route_with_prefix(&method, &path, query.as_deref(), prefix.as_deref());
            let _ = clean_path(&path);
        }

        #[test]
        fn found_params_reassemble_the_decoded_path(a in "[a-zA-Z0-9._~-]{1,8}", b in "[a-zA-Z0-9._~-]{1,8}") {
            let r = router(&[("GET", "/x/{a}/y/{b}")]);
            let got = found(&r, "GET", &format!("/x/{a}/y/{b}")).map(|f| f.1);
            prop_assert_eq!(got, Ok(vec![p("a", &a), p("b", &b)]));
        }
    }
}

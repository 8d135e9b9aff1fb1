//! Faasm's shared files: `PUT /file` and `GET /file` with a `FilePath` header.

use crate::support::each_platform;

#[tokio::test]
async fn shared_files_upload_and_download_by_path() {
    for (mode, p) in each_platform().await {
        let url = format!("{}/file", p.upload);
        let put = |path: &'static str, body: &'static str| {
            let request = p.http.put(&url).header("FilePath", path).body(body);
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        let get = |path: &'static str| {
            let request = p.http.get(&url).header("FilePath", path);
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        assert_eq!(
            put("/data/greeting.txt", "hello").await,
            (200, "Shared file uploaded\n".into()),
            "{mode}"
        );
        assert_eq!(get("data/./greeting.txt").await, (200, "hello".into()));
        assert_eq!(
            get("/data/missing.txt").await,
            (404, "no shared file \"/data/missing.txt\"\n".into())
        );
        let (status, body) = put("/../etc/passwd", "x").await;
        assert_eq!(status, 400, "{mode}");
        assert!(body.contains("leaves the filesystem root"), "{body}");
        let delete = || {
            p.http
                .delete(&url)
                .header("FilePath", "data/greeting.txt")
                .send()
        };
        let deleted = delete().await.unwrap();
        assert_eq!(deleted.status(), 200, "{mode}");
        assert_eq!(deleted.text().await.unwrap(), "Shared file deleted\n");
        assert_eq!(get("data/greeting.txt").await.0, 404, "{mode}");
        let again = delete().await.unwrap();
        assert_eq!(again.status(), 404, "{mode}");
        let response = p.http.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(
            response.text().await.unwrap(),
            "name the file in a FilePath header\n"
        );
        p.stop().await;
    }
}

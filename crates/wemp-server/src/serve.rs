//! Running the service on a TCP listener, with graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;

use crate::WechatService;

/// Serves `service` on `listener` until the process ends.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(listener: TcpListener, service: WechatService) -> std::io::Result<()> {
    serve_with_shutdown(listener, service, std::future::pending()).await
}

/// Serves until `signal` completes; then stops accepting, lets in-flight requests finish,
/// and waits (up to the configured shutdown grace) for running handlers, whose late
/// replies go to the sink.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    service: WechatService,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address reaches each request (delivery records keep it).
    let app = service.clone().into_router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(signal).await?;
    let running = service.in_flight();
    if running > 0 {
        tracing::info!(running, "shutting down: waiting for running handlers");
    }
    if !service.drain(service.shutdown_grace()).await {
        tracing::warn!(
            abandoned = service.in_flight(),
            "shutdown grace period over; abandoning running handlers"
        );
    }
    Ok(())
}

/// Completes on Ctrl-C (and SIGTERM on Unix): pass it to [`serve_with_shutdown`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

package apikey

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Close shuts the Gate down, all before ctx ends: from now on it answers
// 503 shutting_down (with Connection: close) to the requests it would have
// counted, waits for the requests it counted to be answered, and writes
// every count, retrying with backoff while the store fails. The counts
// still unwritten when ctx ends are logged, one ERROR entry per batch with
// the attribute usage_unwritten, for `apikey usage replay` to write later,
// exactly once; the error then says so. It may be called more than once,
// also concurrently.
func (g *Gate) Close(ctx context.Context) error {
	g.stop()
	select {
	case <-g.stopped:
	case <-ctx.Done(): // the meter still logs what it could not write
	}
	err := g.meter.Close(ctx)
	if g.global != nil {
		g.global.Close()
	}
	return err
}

// CloseOnSignal closes the Gate when the process receives one of sigs
// (SIGTERM and SIGINT when none are given: Cloud Run's notice before it
// stops an instance, and Ctrl-C), within the configured ShutdownTimeout
// (SHUTDOWN_TIMEOUT, 8 s by default), logs the outcome, and then raises the
// signal again so that the process ends as it would have. It returns at
// once; call it once, after New.
func (g *Gate) CloseOnSignal(sigs ...os.Signal) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		sig := <-ch
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
		if err := g.Close(ctx); err != nil {
			g.log.Error("usage not written before exit", slog.String("error", err.Error()))
		} else {
			g.log.Info("usage written before exit", slog.String("signal", sig.String()))
		}
		cancel()
		signal.Stop(ch)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(sig)
		}
	}()
}

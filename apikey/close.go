package apikey

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Close shuts the Gate down, all before ctx ends: from now on it answers
// 503 shutting_down (with Connection: close) to the requests it would have
// counted, waits for the requests it counted to be answered, and writes
// every count. It may be called more than once.
func (g *Gate) Close(ctx context.Context) error {
	g.stop()
	select {
	case <-g.stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := g.meter.Close(ctx)
	if g.global != nil {
		g.global.Close()
	}
	return err
}

// closeTimeout bounds CloseOnSignal's Close: Cloud Run kills an instance
// 10 seconds after its SIGTERM.
const closeTimeout = 8 * time.Second

// CloseOnSignal closes the Gate when the process receives one of sigs
// (SIGTERM and SIGINT when none are given: Cloud Run's notice before it
// stops an instance, and Ctrl-C), within 8 seconds, logs the outcome, and
// then raises the signal again so that the process ends as it would have.
// It returns at once; call it once, after New.
func (g *Gate) CloseOnSignal(sigs ...os.Signal) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		sig := <-ch
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
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

package apikey

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Close refuses new requests (503), waits for those counted and writes the
// last counts before ctx ends; it logs what it could not write, for replay.
func (g *Gate) Close(ctx context.Context) error {
	g.stop()
	select {
	case <-g.stopped:
	case <-ctx.Done(): // the meter still logs what it could not write
	}
	err := g.meter.Close(ctx)
	if g.global != nil {
		// Gives back the unused quota units this instance holds.
		if gerr := g.global.Close(ctx); gerr != nil {
			g.log.Warn("unused quota units not given back to Redis: lost capacity until their month ends",
				slog.String("error", gerr.Error()))
		}
	}
	if g.events != nil {
		g.events.Close() // waits for nothing: what is unpublished stays for the sweep
	}
	return err
}

// CloseOnSignal closes the Gate on sigs (SIGTERM, SIGINT), then re-raises.
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

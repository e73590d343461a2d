package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ginsession/ginsession"
	ginsessionotel "github.com/ginsession/ginsession/otel"
)

// otelMetricInterval is how often -otel prints the metrics.
const otelMetricInterval = 10 * time.Second

// otelOutput is where -otel prints; tests replace it.
var otelOutput io.Writer = os.Stdout

// newOTel returns an Observer that reports every session load and commit
// as OpenTelemetry spans and metrics, written to w as JSON: each span
// within a second of its end, the metrics every 10 seconds. store names
// the session store in their attributes. shutdown writes what is still
// pending and stops both.
//
// A real deployment would send them to a collector with an OTLP exporter
// instead; only the exporters change.
func newOTel(w io.Writer, store string) (_ ginsession.Observer, shutdown func(context.Context) error, _ error) {
	res := resource.NewSchemaless(attribute.String("service.name", "gopher-goods"))
	spans, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		return nil, nil, fmt.Errorf("-otel: %w", err)
	}
	metrics, err := stdoutmetric.New(stdoutmetric.WithWriter(w))
	if err != nil {
		return nil, nil, fmt.Errorf("-otel: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithBatcher(spans, sdktrace.WithBatchTimeout(time.Second)))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(otelMetricInterval))))
	obs := ginsessionotel.New(ginsessionotel.WithTracerProvider(tp), ginsessionotel.WithMeterProvider(mp),
		ginsessionotel.WithStoreName(store))
	shutdown = func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}
	return obs, shutdown, nil
}

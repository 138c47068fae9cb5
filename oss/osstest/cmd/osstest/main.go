// Command osstest runs the osstest OSS server as a process, so that tools such as
// `stowage check` and `stowage bench` can target it. It prints the endpoint on
// standard output and serves until interrupted.
//
//	osstest -addr 127.0.0.1:9300 -dir /tmp/oss -bucket bkt1 -bucket bkt2 [-v]
//
// Credentials come from OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (defaults
// "osstest" and "osstest-secret").
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/stowage/stowage/oss/osstest"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var buckets listFlag
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	dir := flag.String("dir", "", "folder for object data (default: memory)")
	region := flag.String("region", "cn-hangzhou", "V4 signing region")
	minPart := flag.Int64("minpartsize", osstest.DefaultMinPartSize, "smallest multipart part but the last, in bytes")
	flag.Var(&buckets, "bucket", "bucket to create at start (repeatable)")
	verbose := flag.Bool("v", false, "log every request on standard error")
	flag.Parse()
	id, secret := os.Getenv("OSS_ACCESS_KEY_ID"), os.Getenv("OSS_ACCESS_KEY_SECRET")
	if id == "" {
		id = "osstest"
	}
	if secret == "" {
		secret = "osstest-secret"
	}
	opts := osstest.Options{Addr: *addr, Dir: *dir, Region: *region, MinPartSize: *minPart,
		AccessKeyID: id, AccessKeySecret: secret, Buckets: buckets}
	if *verbose {
		opts.Logf = log.Printf
	}
	srv, err := osstest.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.Endpoint())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}

package filesystem

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// envCopyChild passes the root to the child process of
// TestKilledWhileCopyingACommittedFile.
const envCopyChild = "STOWAGE_FILESYSTEM_COPY_CHILD_ROOT"

// TestKilledWhileCopyingACommittedFile runs Writer(path, true) on a
// committed file in a child process and SIGKILLs it as soon as the file it
// copies into appears (inotify tells at once), so that it dies in the middle
// of the copy. The next Writer(path, true) must start from the whole
// committed file, and a Commit must not replace it with a truncated one.
func TestKilledWhileCopyingACommittedFile(t *testing.T) {
	if root := os.Getenv(envCopyChild); root != "" {
		d, err := New(context.Background(), Config{RootDirectory: root})
		if err != nil {
			os.Exit(3)
		}
		if _, err := d.Writer(context.Background(), "/f", true); err != nil {
			os.Exit(4)
		}
		time.Sleep(time.Minute) // finished before the kill: wait for it
		os.Exit(5)
	}
	const size = 32 << 20
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i * 7)
	}
	ctx := t.Context()
	short := 0
	for attempt := 1; attempt <= 5 && short == 0; attempt++ {
		root := t.TempDir()
		d := open(t, root)
		b := backendOf(d)
		if err := d.PutContent(ctx, "/f", content); err != nil {
			t.Fatal(err)
		}
		// Make the upload's folder now, to watch it before the child starts.
		dir := b.uploadDir("/f")
		lf, err := b.lockUpload(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		b.release()
		lf.Close()
		created := watchCreate(t, dir)

		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWhileCopyingACommittedFile$")
		cmd.Env = append(os.Environ(), envCopyChild+"="+root)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case name := <-created:
			cmd.Process.Kill()
			<-exited
			t.Logf("attempt %d: killed when %s appeared", attempt, name)
		case err := <-exited:
			t.Fatalf("the child exited before its copy: %v", err)
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatal("the child never started its copy")
		}
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if fi, err := de.Info(); err == nil && de.Name() != lockName && fi.Size() < size {
				t.Logf("attempt %d: %s holds %d of %d bytes", attempt, de.Name(), fi.Size(), size)
				short++
			}
		}

		w, err := d.Writer(ctx, "/f", true)
		if err != nil {
			t.Fatal(err)
		}
		if w.Size() != size {
			w.Cancel(ctx)
			w.Close()
			t.Fatalf("after a crash during the copy: Size = %d, want %d", w.Size(), size)
		}
		if _, copies, err := backendOf(d).j.uploadFiles(dir); err != nil || len(copies) > 0 {
			t.Fatalf("copies left after the resume: %v %v", copies, err)
		}
		write(t, w, "!")
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		w.Close()
		got, err := d.GetContent(ctx, "/f")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(content, '!')) {
			t.Fatalf("committed %d bytes, not the whole file and the appended byte", len(got))
		}
		noLeftovers(t, d)
	}
	if short == 0 {
		t.Skip("the child finished its copy before the kill every time: the crash was not exercised")
	}
}

// watchCreate reports, through the channel, the name of the first file
// created in (or renamed into) dir from now on.
func watchCreate(t *testing.T, dir string) <-chan string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Skipf("no inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	t.Cleanup(func() { f.Close() })
	out := make(chan string, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				start := off + syscall.SizeofInotifyEvent
				name := string(bytes.TrimRight(buf[start:start+int(ev.Len)], "\x00"))
				off = start + int(ev.Len)
				if name != "" && name != lockName && filepath.Base(name) == name {
					out <- name
					return
				}
			}
		}
	}()
	return out
}

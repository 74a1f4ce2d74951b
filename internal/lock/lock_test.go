package lock

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockExcludesOtherHolders(t *testing.T) {
	dir := NewDir(t.TempDir())
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := dir.Lock(context.Background(), "vm-1")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if got := maxInside.Load(); got != 1 {
		t.Fatalf("at most one holder expected inside the lock, saw %d", got)
	}
}

func TestLockHonoursContext(t *testing.T) {
	dir := NewDir(t.TempDir())
	unlock, err := dir.Lock(context.Background(), "held")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := dir.Lock(ctx, "held"); err == nil {
		t.Fatal("second Lock on a held name succeeded; want a context error")
	}
}

func TestLockRejectsUnsafeNames(t *testing.T) {
	dir := NewDir(t.TempDir())
	for _, name := range []string{"", "../etc", "a/b", ".hidden"} {
		if _, err := dir.Lock(context.Background(), name); err == nil {
			t.Errorf("Lock(%q) succeeded; want an error", name)
		}
	}
}

// TestLockExcludesOtherProcesses runs helpers in child processes: flock must
// serialize them, which is the property CPI calls depend on.
func TestLockExcludesOtherProcesses(t *testing.T) {
	if os.Getenv("LOCK_CHILD_DIR") != "" {
		childHoldLock()
		return
	}
	dir := t.TempDir()
	counter := filepath.Join(dir, "counter")
	if err := os.WriteFile(counter, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for i := 0; i < 6; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=TestLockExcludesOtherProcesses")
		cmd.Env = append(os.Environ(), "LOCK_CHILD_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child failed: %v", err)
		}
	}
	raw, _ := os.ReadFile(counter)
	if string(raw) != "6" {
		t.Fatalf("counter = %s after 6 locked read-modify-writes; want 6 (lost updates mean no exclusion)", raw)
	}
	assertNoLockFiles(t, filepath.Join(dir, "locks"))
}

// TestLockFilesDoNotPileUp: released locks leave no file, and removing
// them never lets two holders in (each open file is its own flock owner,
// as separate processes are).
func TestLockFilesDoNotPileUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	var counter, inside int32
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				name := fmt.Sprintf("cid-%d", i%3)
				unlock, err := NewDir(dir).Lock(context.Background(), name)
				if err != nil {
					t.Error(err)
					return
				}
				unlock()
			}
		}()
	}
	wg.Wait()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				unlock, err := NewDir(dir).Lock(context.Background(), "one")
				if err != nil {
					t.Error(err)
					return
				}
				if n := atomic.AddInt32(&inside, 1); n != 1 {
					t.Errorf("%d holders of one lock at once", n)
				}
				counter++
				atomic.AddInt32(&inside, -1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if counter != 8*40 {
		t.Fatalf("counter = %d; want %d", counter, 8*40)
	}
	assertNoLockFiles(t, dir)
}

func assertNoLockFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("%d lock files stay after every lock was released", len(entries))
	}
}

// childHoldLock does an unprotected-looking read-modify-write on a counter
// file; only the lock keeps updates from being lost.
func childHoldLock() {
	dir := os.Getenv("LOCK_CHILD_DIR")
	unlock, err := NewDir(filepath.Join(dir, "locks")).Lock(context.Background(), "counter")
	if err != nil {
		os.Exit(3)
	}
	defer unlock()
	file := filepath.Join(dir, "counter")
	raw, _ := os.ReadFile(file)
	n, _ := strconv.Atoi(string(raw))
	time.Sleep(20 * time.Millisecond)
	_ = os.WriteFile(file, []byte(strconv.Itoa(n+1)), 0o600)
}

func TestLockKeepsItsParentEnterable(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	if _, err := NewDir(filepath.Join(store, "locks")).Lock(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(store)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o001 == 0 {
		t.Fatalf("store_dir created with mode %v: QEMU could not reach the pool inside it", info.Mode().Perm())
	}
}

package ui

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress shows what a long step is doing on stderr: on a terminal one line
// redrawn with a spinner; elsewhere (CI logs) a plain line per change.
type Progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	text  string
	frame int
	stop  chan struct{}
	done  chan struct{}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// NewProgress starts a progress display on w.
func NewProgress(w io.Writer, noColor bool) *Progress {
	p := &Progress{w: w, tty: IsTerminal(w) && !noColor}
	if p.tty {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.spin()
	}
	return p
}

func (p *Progress) spin() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

func (p *Progress) draw() {
	if p.text == "" {
		return
	}
	p.frame = (p.frame + 1) % len(spinner)
	fmt.Fprintf(p.w, "\r\x1b[2K%s %s", spinner[p.frame], p.text)
}

// Update sets the current state; unchanged text prints nothing new.
func (p *Progress) Update(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if text == p.text {
		return
	}
	p.text = text
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintln(p.w, text)
}

// Done ends the display, leaving a final line.
func (p *Progress) Done(format string, args ...any) {
	p.mu.Lock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[2K")
	}
	p.text = ""
	p.mu.Unlock()
	if p.tty {
		close(p.stop)
		<-p.done
	}
	if format != "" {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

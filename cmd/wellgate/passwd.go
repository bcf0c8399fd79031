package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/wellgate/wellgate/broker"
)

// cmdPasswd prints the bcrypt hash of a password for a password_hash key ([[broker.user]],
// [[web.user]]). At a terminal it asks twice without echo; otherwise it reads one line from
// stdin (`echo -n secret | wellgate passwd`).
func cmdPasswd(stdin io.Reader, stdout, stderr io.Writer) int {
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "wellgate passwd:", err)
		return 1
	}
	h, err := broker.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "wellgate passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if string(a) != string(b) {
			return nil, errors.New("the two passwords differ")
		}
		return a, nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("no password on standard input")
	}
	return []byte(line), nil
}

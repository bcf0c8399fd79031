package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswdHashesOneLineOfStdin(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cmdPasswd(strings.NewReader("wellsite 2am\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	h := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("wellsite 2am")); err != nil {
		t.Fatalf("printed %q, which does not match the password: %v", h, err)
	}
	out.Reset()
	errb.Reset()
	if code := cmdPasswd(strings.NewReader(""), &out, &errb); code != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "no password") {
		t.Fatalf("empty stdin: exit %d, out %q, err %q", code, out.String(), errb.String())
	}
}

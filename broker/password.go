package broker

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// PasswordCost is the bcrypt cost HashPassword uses (bcrypt's default, ~50 ms on a small ARM
// box per check).
const PasswordCost = bcrypt.DefaultCost

// HashPassword returns the bcrypt hash of pw for a user's password_hash, as `wellgate passwd`
// prints it. An empty password is refused, as is one longer than bcrypt's 72 bytes.
func HashPassword(pw []byte) (string, error) {
	if len(pw) == 0 {
		return "", errors.New("empty password")
	}
	h, err := bcrypt.GenerateFromPassword(pw, PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// checkHash reports whether h is a bcrypt hash (it does not check any password against it).
func checkHash(h string) error {
	if h == "" {
		return errors.New("empty: set the bcrypt hash that `wellgate passwd` prints")
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("not a bcrypt hash: %w", err)
	}
	return nil
}

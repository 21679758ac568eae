package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"hash"
	"slices"
)

// Ext field names of the ACL hook (SessionCredentials, Java's AclSigner and AclClientRPCHook).
const (
	FieldAccessKey     = "AccessKey"
	FieldSignature     = "Signature"
	FieldSecurityToken = "SecurityToken"
	// FieldUniqueKeyQuery is the flag Java clients add to QUERY_MESSAGE
	// before signing; the 4.9.7 server leaves it out (the Java client's AclClientRPCHook).
	FieldUniqueKeyQuery = "_UNIQUE_KEY_QUERY"
)

// Sign returns the request signature both clients compute: Base64 of
// HMAC-SHA1, keyed with the secret key, over the values of the ext fields
// sorted by key (Signature and the skipped keys left out) followed by the
// body (AclClientRPCHook, AclUtils.combineRequestContent, AclSigner).
func Sign(secretKey string, ext map[string]string, body []byte, skip ...string) string {
	mac := hmac.New(sha1.New, []byte(secretKey))
	writeContent(mac, ext, body, skip)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func writeContent(h hash.Hash, ext map[string]string, body []byte, skip []string) {
	var stack [32]string
	keys, n := stack[:0], 0
	for k, v := range ext {
		if k != FieldSignature && !slices.Contains(skip, k) {
			keys = append(keys, k)
			n += len(v)
		}
	}
	slices.Sort(keys) // byte order = Java TreeMap order for the ASCII keys clients send
	values := make([]byte, 0, n)
	for _, k := range keys {
		values = append(values, ext[k]...)
	}
	h.Write(values)
	h.Write(body)
}

// signatureMatches reports whether sig is the request's signature under
// secretKey in any of the forms real clients produce (Java's PlainAccessValidator): the
// Java algorithm over every field; without _UNIQUE_KEY_QUERY (the 4.9.7
// server's form, which 4.9.3+ Java clients' key queries do not match);
// without SecurityToken (Go client v2.1.2 signs without it). Comparisons
// are constant-time.
func signatureMatches(secretKey, sig string, ext map[string]string, body []byte) bool {
	if sig == "" {
		return false
	}
	variants := [][]string{nil}
	if _, ok := ext[FieldUniqueKeyQuery]; ok {
		variants = append(variants, []string{FieldUniqueKeyQuery})
	}
	if _, ok := ext[FieldSecurityToken]; ok {
		variants = append(variants, []string{FieldSecurityToken})
	}
	ok := false
	for _, skip := range variants {
		want := Sign(secretKey, ext, body, skip...)
		ok = hmac.Equal([]byte(want), []byte(sig)) || ok
	}
	return ok
}

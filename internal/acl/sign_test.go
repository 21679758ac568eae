package acl

import "testing"

// The vectors were computed outside Go (openssl dgst -sha1 -hmac <secret>
// | base64) over the content the Java client builds: the values of the
// ext fields sorted by key, then the body (Java's AclSigner and AclClientRPCHook).
func TestSignKnownVectors(t *testing.T) {
	cases := []struct {
		name, secret string
		ext          map[string]string
		body         string
		skip         []string
		want         string
	}{
		{"send with body (Java's AclSigner and AclClientRPCHook)", "12345678",
			map[string]string{"topic": "T", "producerGroup": "pg", "AccessKey": "RocketMQ"}, "x", nil,
			"DWboNsmxgzwzKCGtjYsUOh8pZLs="},
		{"security token signed (Java)", "secret-key",
			map[string]string{"AccessKey": "AKEYxxxx", "SecurityToken": "tokenTOK", "consumerGroup": "g1", "queueId": "0", "topic": "T"}, "", nil,
			"53Zz5twDtRULB9PCazUHI2YrfpE="},
		{"security token left out (Go v2.1.2)", "secret-key",
			map[string]string{"AccessKey": "AKEYxxxx", "SecurityToken": "tokenTOK", "consumerGroup": "g1", "queueId": "0", "topic": "T"}, "",
			[]string{FieldSecurityToken}, "Gv6/8maQvJnRKvNlH3dif5UhoGY="},
		{"unique key flag sorts after upper case", "secret-key",
			map[string]string{"AccessKey": "AKEYxxxx", "SecurityToken": "tokenTOK", FieldUniqueKeyQuery: "true", "consumerGroup": "g1", "queueId": "0", "topic": "T"}, "", nil,
			"owcD4iGzLllHN5TO64IPHgdhaow="},
		{"the Signature field is never signed", "12345678",
			map[string]string{"topic": "T", "producerGroup": "pg", "AccessKey": "RocketMQ", "Signature": "junk"}, "x", nil,
			"DWboNsmxgzwzKCGtjYsUOh8pZLs="},
	}
	for _, c := range cases {
		if got := Sign(c.secret, c.ext, []byte(c.body), c.skip...); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSignatureMatchesClientVariants(t *testing.T) {
	ext := map[string]string{"AccessKey": "AKEYxxxx", "SecurityToken": "tokenTOK", "consumerGroup": "g1", "queueId": "0", "topic": "T"}
	for _, sig := range []string{"53Zz5twDtRULB9PCazUHI2YrfpE=", "Gv6/8maQvJnRKvNlH3dif5UhoGY="} {
		if !signatureMatches("secret-key", sig, ext, nil) {
			t.Errorf("%s refused", sig)
		}
	}
	for _, bad := range []string{"", "53Zz5twDtRULB9PCazUHI2YrfpF=", "Gv6/8maQvJnRKvNlH3dif5UhoGY"} {
		if signatureMatches("secret-key", bad, ext, nil) {
			t.Errorf("%q accepted", bad)
		}
	}
	if signatureMatches("secret-kez", "53Zz5twDtRULB9PCazUHI2YrfpE=", ext, nil) {
		t.Error("accepted under another secret")
	}
	if signatureMatches("secret-key", "53Zz5twDtRULB9PCazUHI2YrfpE=", ext, []byte("b")) {
		t.Error("accepted with a body that was not signed")
	}
	// A Java 4.9.3+ key query signs _UNIQUE_KEY_QUERY; 4.9.7's own form
	// leaves it out. Both are accepted.
	q := map[string]string{"AccessKey": "AKEYxxxx", "SecurityToken": "tokenTOK", FieldUniqueKeyQuery: "true", "consumerGroup": "g1", "queueId": "0", "topic": "T"}
	for _, sig := range []string{"owcD4iGzLllHN5TO64IPHgdhaow=", "53Zz5twDtRULB9PCazUHI2YrfpE="} {
		if !signatureMatches("secret-key", sig, q, nil) {
			t.Errorf("key query %s refused", sig)
		}
	}
}

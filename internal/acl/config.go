package acl

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// MinKeyLen is the shortest accessKey or secretKey Java accepts: both must
// be longer than 6 characters (AclConstants.ACCESS_KEY_MIN_LENGTH).
const MinKeyLen = 7

// maxFileBytes bounds the file read; a plain ACL file is a few KB.
const maxFileBytes = 16 << 20

// Account is one entry of accounts: in plain_acl.yml, compiled.
type Account struct {
	AccessKey string
	SecretKey string
	// White, when it matches the client, lets the account's requests in
	// without a signature or permission check.
	White *AddrPattern
	Admin bool
	// DefaultTopicPerm and DefaultGroupPerm apply to resources not listed
	// in Perms (absent in the file: DENY).
	DefaultTopicPerm Perm
	DefaultGroupPerm Perm
	// Perms holds topicPerms by topic name and groupPerms by the group's
	// retry topic (%RETRY%<group>), as Java stores them.
	Perms map[string]Perm
}

// Table is one loaded plain_acl.yml. It is never modified after Parse.
type Table struct {
	GlobalWhite []*AddrPattern
	Accounts    map[string]*Account
	// Warnings lists what was accepted but looks wrong (a repeated
	// accessKey: the first wins, as in Java).
	Warnings []string
}

// fileFormat is plain_acl.yml (FORMAT.md). Every scalar is read as text, as
// Java reads them through fastjson's getString; a number such as
// secretKey: 12345678 therefore becomes "12345678".
type fileFormat struct {
	GlobalWhiteRemoteAddresses []text        `yaml:"globalWhiteRemoteAddresses"`
	Accounts                   []accountYAML `yaml:"accounts"`
}

type accountYAML struct {
	AccessKey          text   `yaml:"accessKey"`
	SecretKey          text   `yaml:"secretKey"`
	WhiteRemoteAddress text   `yaml:"whiteRemoteAddress"`
	Admin              text   `yaml:"admin"`
	DefaultTopicPerm   text   `yaml:"defaultTopicPerm"`
	DefaultGroupPerm   text   `yaml:"defaultGroupPerm"`
	TopicPerms         []text `yaml:"topicPerms"`
	GroupPerms         []text `yaml:"groupPerms"`
}

// text is a YAML scalar read as its text; null is "".
type text string

func (t *text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a single value, got a %s", n.Line, kindName(n.Kind))
	}
	if n.Tag == "!!null" {
		*t = ""
		return nil
	}
	*t = text(n.Value)
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	return "node"
}

// Parse reads plain_acl.yml. An empty document is an empty table (every
// request not white-listed is refused), as in Java.
func Parse(data []byte) (*Table, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("acl file is %d bytes, more than %d", len(data), maxFileBytes)
	}
	var f fileFormat
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	t := &Table{Accounts: map[string]*Account{}}
	for _, s := range f.GlobalWhiteRemoteAddresses {
		p, err := ParseAddrPattern(string(s))
		if err != nil {
			return nil, fmt.Errorf("globalWhiteRemoteAddresses: %w", err)
		}
		t.GlobalWhite = append(t.GlobalWhite, p)
	}
	for i := range f.Accounts {
		a, err := f.Accounts[i].compile()
		if err != nil {
			return nil, fmt.Errorf("accounts[%d]: %w", i, err)
		}
		if _, dup := t.Accounts[a.AccessKey]; dup {
			t.Warnings = append(t.Warnings, fmt.Sprintf("accessKey %s is defined twice; the first entry is used", a.AccessKey))
			continue
		}
		t.Accounts[a.AccessKey] = a
	}
	return t, nil
}

func (y *accountYAML) compile() (*Account, error) {
	a := &Account{AccessKey: string(y.AccessKey), SecretKey: string(y.SecretKey), Perms: map[string]Perm{}}
	if len(a.AccessKey) < MinKeyLen || len(a.SecretKey) < MinKeyLen {
		return nil, fmt.Errorf("accessKey %q: accessKey and secretKey must be longer than 6 characters", a.AccessKey)
	}
	var err error
	if a.White, err = ParseAddrPattern(string(y.WhiteRemoteAddress)); err != nil {
		return nil, fmt.Errorf("accessKey %s: whiteRemoteAddress: %w", a.AccessKey, err)
	}
	if a.Admin, err = parseBool(string(y.Admin)); err != nil {
		return nil, fmt.Errorf("accessKey %s: admin: %w", a.AccessKey, err)
	}
	a.DefaultTopicPerm, _ = ParsePerm(string(y.DefaultTopicPerm))
	a.DefaultGroupPerm, _ = ParsePerm(string(y.DefaultGroupPerm))
	if err := a.addPerms(y.TopicPerms, ""); err != nil {
		return nil, err
	}
	if err := a.addPerms(y.GroupPerms, RetryPrefix); err != nil {
		return nil, err
	}
	return a, nil
}

// addPerms reads "name=PERM" entries. Java splits on '=' dropping empty
// pieces and wants exactly two; an unknown permission string is DENY.
func (a *Account) addPerms(list []text, prefix string) error {
	for _, e := range list {
		items := splitNonEmpty(string(e), "=")
		if len(items) != 2 {
			kind := "topic"
			if prefix != "" {
				kind = "group"
			}
			return fmt.Errorf("accessKey %s: parse resource permission failed for %s:%s", a.AccessKey, kind, e)
		}
		perm, _ := ParsePerm(items[1])
		a.Perms[prefix+strings.TrimSpace(items[0])] = perm
	}
	return nil
}

// parseBool accepts what SnakeYAML and fastjson turn into a boolean.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "no", "off", "n", "0":
		return false, nil
	case "true", "yes", "on", "y", "1":
		return true, nil
	}
	return false, errors.New("want true or false")
}

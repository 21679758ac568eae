package protocol

// Controller mode (automatic failover; facts-2 §21): the request and
// response codes RocketMQ 5.x uses between brokers and controllers
// (Java's RequestCode / ResponseCode), and mqd's JSON bodies for them.
// Clients never send these codes. Every body is decoded by a bounded
// decoder: size, names, addresses and the in-sync set are checked before
// anything uses them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Controller request codes (Java RequestCode, 5.x).
const (
	RequestBrokerHeartbeat          int16 = 904  // BROKER_HEARTBEAT
	RequestControllerAlterSyncState int16 = 1001 // CONTROLLER_ALTER_SYNC_STATE_SET
	RequestControllerElectMaster    int16 = 1002 // CONTROLLER_ELECT_MASTER
	RequestControllerRegisterBroker int16 = 1003 // CONTROLLER_REGISTER_BROKER
	RequestControllerGetReplicaInfo int16 = 1004 // CONTROLLER_GET_REPLICA_INFO
	RequestControllerGetMetadata    int16 = 1005 // CONTROLLER_GET_METADATA_INFO
)

// Controller response codes (Java ResponseCode, 5.x).
const (
	ResponseControllerFencedMasterEpoch  int16 = 2000 // CONTROLLER_FENCED_MASTER_EPOCH
	ResponseControllerFencedSyncStateSet int16 = 2001 // CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH
	ResponseControllerInvalidMaster      int16 = 2002 // CONTROLLER_INVALID_MASTER
	ResponseControllerInvalidReplicas    int16 = 2003 // CONTROLLER_INVALID_REPLICAS
	ResponseControllerMasterNotAvailable int16 = 2004 // CONTROLLER_MASTER_NOT_AVAILABLE
	ResponseControllerInvalidRequest     int16 = 2005 // CONTROLLER_INVALID_REQUEST
	ResponseControllerBrokerNotAlive     int16 = 2006 // CONTROLLER_BROKER_NOT_ALIVE
	ResponseControllerNotLeader          int16 = 2007 // CONTROLLER_NOT_LEADER
	ResponseControllerNeedRegister       int16 = 2010 // CONTROLLER_BROKER_NEED_TO_BE_REGISTERED
	ResponseControllerMasterStillExist   int16 = 2011 // CONTROLLER_MASTER_STILL_EXIST
	ResponseControllerElectMasterFailed  int16 = 2012 // CONTROLLER_ELECT_MASTER_FAILED
	ResponseControllerAlterSyncFailed    int16 = 2013 // CONTROLLER_ALTER_SYNC_STATE_SET_FAILED
)

// Controller body limits.
const (
	MaxControllerBody  = 64 << 10 // bytes of one request body
	MaxControllerName  = 127      // cluster and broker names (Java's topic-name limit)
	MaxControllerAddr  = 255      // host:port
	MaxSyncStateSet    = 64       // members of one in-sync set
	MaxReplicasPerName = 64       // replicas of one broker name
)

// ControllerExtLeader is the ext field a follower controller sets on a
// CONTROLLER_NOT_LEADER response: the leader's remoting address ("" when
// no leader is known).
const ControllerExtLeader = "leaderAddr"

// BrokerHeartbeatBody is sent by every broker, every brokerHeartbeatInterval
// (CONTROLLER_REGISTER_BROKER carries the same body; BrokerID is then
// ignored and assigned by the controller).
type BrokerHeartbeatBody struct {
	Cluster    string `json:"clusterName"`
	BrokerName string `json:"brokerName"`
	BrokerAddr string `json:"brokerAddr"`
	HAAddr     string `json:"haAddr"`
	BrokerID   int64  `json:"brokerId"`
	Epoch      int32  `json:"epoch"`         // last epoch in the broker's epoch file
	MaxOffset  int64  `json:"maxOffset"`     // commit-log max offset
	TimeoutMs  int64  `json:"timeoutMillis"` // controllerHeartBeatTimeoutMills
	Priority   int32  `json:"electionPriority"`
}

// AlterSyncStateSetBody is the master's report of its in-sync slaves
// (CONTROLLER_ALTER_SYNC_STATE_SET).
type AlterSyncStateSetBody struct {
	Cluster           string  `json:"clusterName"`
	BrokerName        string  `json:"brokerName"`
	MasterID          int64   `json:"masterBrokerId"`
	MasterEpoch       int32   `json:"masterEpoch"`
	SyncStateSetEpoch int32   `json:"syncStateSetEpoch"`
	SyncStateSet      []int64 `json:"syncStateSet"`
	// Seq (mqd extension, 0: none) orders one master's proposals at its
	// master epoch: the controller refuses a proposal whose Seq is not
	// above every Seq it applied from that master, so an answer the state
	// machine gave to Seq n seals every proposal up to n
	// (controller/agent/isr.go).
	Seq int64 `json:"seq,omitempty"`
}

// ElectMasterBody asks the leader to elect now (CONTROLLER_ELECT_MASTER,
// an admin request); the controller elects by itself when a master dies.
type ElectMasterBody struct {
	Cluster    string `json:"clusterName"`
	BrokerName string `json:"brokerName"`
}

// ReplicaInfo is one replica of a broker name. Alive, Epoch and MaxOffset
// are the leader's latest heartbeat data (not replicated): the master
// counts only alive slaves as in sync, and uses their offsets when its
// broker cannot report HA acknowledgements.
type ReplicaInfo struct {
	BrokerID  int64  `json:"brokerId"`
	Addr      string `json:"brokerAddr"`
	HAAddr    string `json:"haAddr"`
	Alive     bool   `json:"alive"`
	Epoch     int32  `json:"epoch"`
	MaxOffset int64  `json:"maxOffset"`
}

// ReplicaSetInfo is the controller's committed view of one broker name:
// every answer to a broker carries it, so the broker follows the
// controller's decision (role, epoch, master address) on its next
// heartbeat.
type ReplicaSetInfo struct {
	Cluster           string        `json:"clusterName"`
	BrokerName        string        `json:"brokerName"`
	BrokerID          int64         `json:"brokerId"` // the requester's id
	MasterID          int64         `json:"masterBrokerId"`
	MasterAddr        string        `json:"masterAddr"`
	MasterHAAddr      string        `json:"masterHaAddr"`
	MasterEpoch       int32         `json:"masterEpoch"`
	SyncStateSet      []int64       `json:"syncStateSet"`
	SyncStateSetEpoch int32         `json:"syncStateSetEpoch"`
	Replicas          []ReplicaInfo `json:"replicas"`
	// AlterSeq (mqd extension) is the highest AlterSyncStateSetBody.Seq
	// the state machine applied from the current master at this epoch.
	AlterSeq int64 `json:"alterSeq,omitempty"`
}

// ControllerMetadata answers CONTROLLER_GET_METADATA_INFO.
type ControllerMetadata struct {
	LeaderID   string `json:"controllerLeaderId"`
	LeaderAddr string `json:"controllerLeaderAddress"`
	IsLeader   bool   `json:"isLeader"`
}

var errControllerBody = errors.New("controller body")

func decodeControllerJSON(body []byte, v any) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty", errControllerBody)
	}
	if len(body) > MaxControllerBody {
		return fmt.Errorf("%w: %d bytes, limit %d", errControllerBody, len(body), MaxControllerBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", errControllerBody, err)
	}
	return nil
}

func checkBrokerNames(cluster, name string) error {
	if err := checkControllerName("clusterName", cluster); err != nil {
		return err
	}
	return checkControllerName("brokerName", name)
}

func checkControllerName(field, s string) error {
	if s == "" || len(s) > MaxControllerName {
		return fmt.Errorf("%w: %s must have 1..%d bytes", errControllerBody, field, MaxControllerName)
	}
	if strings.ContainsAny(s, "/\x00\n\r") {
		return fmt.Errorf("%w: %s %q has a forbidden character", errControllerBody, field, s)
	}
	return nil
}

func checkControllerAddr(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if s == "" || len(s) > MaxControllerAddr || !strings.Contains(s, ":") || strings.ContainsAny(s, " \x00\n\r;") {
		return fmt.Errorf("%w: %s %q is not host:port", errControllerBody, field, s)
	}
	return nil
}

// DecodeBrokerHeartbeat decodes and bounds a heartbeat or registration.
func DecodeBrokerHeartbeat(body []byte) (BrokerHeartbeatBody, error) {
	var b BrokerHeartbeatBody
	if err := decodeControllerJSON(body, &b); err != nil {
		return b, err
	}
	if err := checkBrokerNames(b.Cluster, b.BrokerName); err != nil {
		return b, err
	}
	if err := checkControllerAddr("brokerAddr", b.BrokerAddr, true); err != nil {
		return b, err
	}
	if err := checkControllerAddr("haAddr", b.HAAddr, false); err != nil {
		return b, err
	}
	switch {
	case b.BrokerID < 0:
		return b, fmt.Errorf("%w: brokerId %d < 0", errControllerBody, b.BrokerID)
	case b.Epoch < 0 || b.MaxOffset < 0:
		return b, fmt.Errorf("%w: negative epoch or offset", errControllerBody)
	case b.TimeoutMs < 0 || b.TimeoutMs > 3600_000:
		return b, fmt.Errorf("%w: timeoutMillis %d outside 0..3600000", errControllerBody, b.TimeoutMs)
	}
	return b, nil
}

// DecodeAlterSyncStateSet decodes and bounds a master's in-sync report.
func DecodeAlterSyncStateSet(body []byte) (AlterSyncStateSetBody, error) {
	var b AlterSyncStateSetBody
	if err := decodeControllerJSON(body, &b); err != nil {
		return b, err
	}
	if err := checkBrokerNames(b.Cluster, b.BrokerName); err != nil {
		return b, err
	}
	if b.MasterID <= 0 || b.MasterEpoch < 0 || b.SyncStateSetEpoch < 0 {
		return b, fmt.Errorf("%w: bad master id or epochs", errControllerBody)
	}
	if len(b.SyncStateSet) == 0 || len(b.SyncStateSet) > MaxSyncStateSet {
		return b, fmt.Errorf("%w: syncStateSet must have 1..%d members", errControllerBody, MaxSyncStateSet)
	}
	for _, id := range b.SyncStateSet {
		if id <= 0 {
			return b, fmt.Errorf("%w: syncStateSet member %d <= 0", errControllerBody, id)
		}
	}
	return b, nil
}

// DecodeElectMaster decodes an admin election request.
func DecodeElectMaster(body []byte) (ElectMasterBody, error) {
	var b ElectMasterBody
	if err := decodeControllerJSON(body, &b); err != nil {
		return b, err
	}
	return b, checkBrokerNames(b.Cluster, b.BrokerName)
}

// DecodeReplicaSetInfo decodes a controller's answer (brokers decode it).
func DecodeReplicaSetInfo(body []byte) (ReplicaSetInfo, error) {
	var b ReplicaSetInfo
	if err := decodeControllerJSON(body, &b); err != nil {
		return b, err
	}
	if err := checkBrokerNames(b.Cluster, b.BrokerName); err != nil {
		return b, err
	}
	if len(b.SyncStateSet) > MaxSyncStateSet || len(b.Replicas) > MaxReplicasPerName {
		return b, fmt.Errorf("%w: too many members", errControllerBody)
	}
	if b.MasterID < 0 || b.BrokerID < 0 || b.MasterEpoch < 0 {
		return b, fmt.Errorf("%w: negative id or epoch", errControllerBody)
	}
	if err := checkControllerAddr("masterAddr", b.MasterAddr, false); err != nil {
		return b, err
	}
	return b, checkControllerAddr("masterHaAddr", b.MasterHAAddr, false)
}

// DecodeControllerMetadata decodes CONTROLLER_GET_METADATA_INFO's answer.
func DecodeControllerMetadata(body []byte) (ControllerMetadata, error) {
	var b ControllerMetadata
	if err := decodeControllerJSON(body, &b); err != nil {
		return b, err
	}
	if len(b.LeaderID) > MaxControllerName {
		return b, fmt.Errorf("%w: leader id too long", errControllerBody)
	}
	return b, checkControllerAddr("controllerLeaderAddress", b.LeaderAddr, false)
}

// EncodeControllerJSON marshals a controller body (types above only; they
// cannot fail to marshal).
func EncodeControllerJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("protocol: controller body: " + err.Error())
	}
	return b
}

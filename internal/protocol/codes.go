package protocol

import "strconv"

// Request codes (RemotingCommand.code of a request). Names follow the Java
// RequestCode constants in CamelCase; the value is what travels on the wire.
const (
	SendMessage                      int16 = 10
	PullMessage                      int16 = 11
	QueryMessage                     int16 = 12
	QueryBrokerOffset                int16 = 13
	QueryConsumerOffset              int16 = 14
	UpdateConsumerOffset             int16 = 15
	UpdateAndCreateTopic             int16 = 17
	GetAllTopicConfig                int16 = 21
	GetTopicConfigList               int16 = 22
	GetTopicNameList                 int16 = 23
	UpdateBrokerConfig               int16 = 25
	GetBrokerConfig                  int16 = 26
	TriggerDeleteFiles               int16 = 27
	GetBrokerRuntimeInfo             int16 = 28
	SearchOffsetByTimestamp          int16 = 29
	GetMaxOffset                     int16 = 30
	GetMinOffset                     int16 = 31
	GetEarliestMsgStoretime          int16 = 32
	ViewMessageByID                  int16 = 33
	HeartBeat                        int16 = 34
	UnregisterClient                 int16 = 35
	ConsumerSendMsgBack              int16 = 36
	EndTransaction                   int16 = 37
	GetConsumerListByGroup           int16 = 38
	CheckTransactionState            int16 = 39
	NotifyConsumerIdsChanged         int16 = 40
	LockBatchMQ                      int16 = 41
	UnlockBatchMQ                    int16 = 42
	GetAllConsumerOffset             int16 = 43
	GetAllDelayOffset                int16 = 45
	CheckClientConfig                int16 = 46
	UpdateAndCreateACLConfig         int16 = 50
	DeleteACLConfig                  int16 = 51
	GetBrokerClusterACLInfo          int16 = 52
	UpdateGlobalWhiteAddrsConfig     int16 = 53
	GetBrokerClusterACLConfig        int16 = 54
	PutKVConfig                      int16 = 100
	GetKVConfig                      int16 = 101
	DeleteKVConfig                   int16 = 102
	RegisterBroker                   int16 = 103
	UnregisterBroker                 int16 = 104
	GetRouteInfoByTopic              int16 = 105
	GetBrokerClusterInfo             int16 = 106
	UpdateAndCreateSubscriptionGroup int16 = 200
	GetAllSubscriptionGroupConfig    int16 = 201
	GetTopicStatsInfo                int16 = 202
	GetConsumerConnectionList        int16 = 203
	GetProducerConnectionList        int16 = 204
	WipeWritePermOfBroker            int16 = 205
	GetAllTopicListFromNameserver    int16 = 206
	DeleteSubscriptionGroup          int16 = 207
	GetConsumeStats                  int16 = 208
	SuspendConsumer                  int16 = 209
	ResumeConsumer                   int16 = 210
	ResetConsumerOffsetInConsumer    int16 = 211
	ResetConsumerOffsetInBroker      int16 = 212
	AdjustConsumerThreadPool         int16 = 213
	WhoConsumeTheMessage             int16 = 214
	DeleteTopicInBroker              int16 = 215
	DeleteTopicInNamesrv             int16 = 216
	GetKVListByNamespace             int16 = 219
	ResetConsumerClientOffset        int16 = 220
	GetConsumerStatusFromClient      int16 = 221
	InvokeBrokerToResetOffset        int16 = 222
	InvokeBrokerToGetConsumerStatus  int16 = 223
	GetTopicsByCluster               int16 = 224
	QueryTopicConsumeByWho           int16 = 300
	RegisterFilterServer             int16 = 301
	RegisterMessageFilterClass       int16 = 302
	QueryConsumeTimeSpan             int16 = 303
	GetSystemTopicListFromNS         int16 = 304
	GetSystemTopicListFromBroker     int16 = 305
	CleanExpiredConsumeQueue         int16 = 306
	GetConsumerRunningInfo           int16 = 307
	QueryCorrectionOffset            int16 = 308
	ConsumeMessageDirectly           int16 = 309
	SendMessageV2                    int16 = 310
	GetUnitTopicList                 int16 = 311
	GetHasUnitSubTopicList           int16 = 312
	GetHasUnitSubUnunitTopicList     int16 = 313
	CloneGroupOffset                 int16 = 314
	ViewBrokerStatsData              int16 = 315
	CleanUnusedTopic                 int16 = 316
	GetBrokerConsumeStats            int16 = 317
	UpdateNamesrvConfig              int16 = 318
	GetNamesrvConfig                 int16 = 319
	SendBatchMessage                 int16 = 320
	QueryConsumeQueue                int16 = 321
	QueryDataVersion                 int16 = 322
	ResumeCheckHalfMessage           int16 = 323
	SendReplyMessage                 int16 = 324
	SendReplyMessageV2               int16 = 325
	PushReplyMessageToClient         int16 = 326
	AddWritePermOfBroker             int16 = 327
	GetAllProducerInfo               int16 = 328
	DeleteExpiredCommitLog           int16 = 329
)

// Response codes (RemotingCommand.code of a response). Every name carries
// the Response prefix so it cannot be confused with a request code of the
// same value (ResponseFlushDiskTimeout and SendMessage are both 10).
const (
	ResponseSuccess                            int16 = 0
	ResponseSystemError                        int16 = 1
	ResponseSystemBusy                         int16 = 2
	ResponseRequestCodeNotSupported            int16 = 3
	ResponseTransactionFailed                  int16 = 4
	ResponseFlushDiskTimeout                   int16 = 10
	ResponseSlaveNotAvailable                  int16 = 11
	ResponseFlushSlaveTimeout                  int16 = 12
	ResponseMessageIllegal                     int16 = 13
	ResponseServiceNotAvailable                int16 = 14
	ResponseVersionNotSupported                int16 = 15
	ResponseNoPermission                       int16 = 16
	ResponseTopicNotExist                      int16 = 17
	ResponseTopicExistAlready                  int16 = 18
	ResponsePullNotFound                       int16 = 19
	ResponsePullRetryImmediately               int16 = 20
	ResponsePullOffsetMoved                    int16 = 21
	ResponseQueryNotFound                      int16 = 22
	ResponseSubscriptionParseFailed            int16 = 23
	ResponseSubscriptionNotExist               int16 = 24
	ResponseSubscriptionNotLatest              int16 = 25
	ResponseSubscriptionGroupNotExist          int16 = 26
	ResponseFilterDataNotExist                 int16 = 27
	ResponseFilterDataNotLatest                int16 = 28
	ResponseTransactionShouldCommit            int16 = 200
	ResponseTransactionShouldRollback          int16 = 201
	ResponseTransactionStateUnknow             int16 = 202
	ResponseTransactionStateGroupWrong         int16 = 203
	ResponseNoBuyerID                          int16 = 204
	ResponseNotInCurrentUnit                   int16 = 205
	ResponseConsumerNotOnline                  int16 = 206
	ResponseConsumeMsgTimeout                  int16 = 207
	ResponseNoMessage                          int16 = 208
	ResponseUpdateAndCreateACLConfigFailed     int16 = 209
	ResponseDeleteACLConfigFailed              int16 = 210
	ResponseUpdateGlobalWhiteAddrsConfigFailed int16 = 211
	ResponseFlowControl                        int16 = 215
)

var requestNames = map[int16]string{
	SendMessage: "SEND_MESSAGE", PullMessage: "PULL_MESSAGE", QueryMessage: "QUERY_MESSAGE",
	QueryBrokerOffset: "QUERY_BROKER_OFFSET", QueryConsumerOffset: "QUERY_CONSUMER_OFFSET",
	UpdateConsumerOffset: "UPDATE_CONSUMER_OFFSET", UpdateAndCreateTopic: "UPDATE_AND_CREATE_TOPIC",
	GetAllTopicConfig: "GET_ALL_TOPIC_CONFIG", GetTopicConfigList: "GET_TOPIC_CONFIG_LIST",
	GetTopicNameList: "GET_TOPIC_NAME_LIST", UpdateBrokerConfig: "UPDATE_BROKER_CONFIG",
	GetBrokerConfig: "GET_BROKER_CONFIG", TriggerDeleteFiles: "TRIGGER_DELETE_FILES",
	GetBrokerRuntimeInfo: "GET_BROKER_RUNTIME_INFO", SearchOffsetByTimestamp: "SEARCH_OFFSET_BY_TIMESTAMP",
	GetMaxOffset: "GET_MAX_OFFSET", GetMinOffset: "GET_MIN_OFFSET",
	GetEarliestMsgStoretime: "GET_EARLIEST_MSG_STORETIME", ViewMessageByID: "VIEW_MESSAGE_BY_ID",
	HeartBeat: "HEART_BEAT", UnregisterClient: "UNREGISTER_CLIENT",
	ConsumerSendMsgBack: "CONSUMER_SEND_MSG_BACK", EndTransaction: "END_TRANSACTION",
	GetConsumerListByGroup: "GET_CONSUMER_LIST_BY_GROUP", CheckTransactionState: "CHECK_TRANSACTION_STATE",
	NotifyConsumerIdsChanged: "NOTIFY_CONSUMER_IDS_CHANGED", LockBatchMQ: "LOCK_BATCH_MQ",
	UnlockBatchMQ: "UNLOCK_BATCH_MQ", GetAllConsumerOffset: "GET_ALL_CONSUMER_OFFSET",
	GetAllDelayOffset: "GET_ALL_DELAY_OFFSET", CheckClientConfig: "CHECK_CLIENT_CONFIG",
	UpdateAndCreateACLConfig: "UPDATE_AND_CREATE_ACL_CONFIG", DeleteACLConfig: "DELETE_ACL_CONFIG",
	GetBrokerClusterACLInfo:      "GET_BROKER_CLUSTER_ACL_INFO",
	UpdateGlobalWhiteAddrsConfig: "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG",
	GetBrokerClusterACLConfig:    "GET_BROKER_CLUSTER_ACL_CONFIG", PutKVConfig: "PUT_KV_CONFIG",
	GetKVConfig: "GET_KV_CONFIG", DeleteKVConfig: "DELETE_KV_CONFIG", RegisterBroker: "REGISTER_BROKER",
	UnregisterBroker: "UNREGISTER_BROKER", GetRouteInfoByTopic: "GET_ROUTEINFO_BY_TOPIC",
	GetBrokerClusterInfo:             "GET_BROKER_CLUSTER_INFO",
	UpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
	GetAllSubscriptionGroupConfig:    "GET_ALL_SUBSCRIPTIONGROUP_CONFIG", GetTopicStatsInfo: "GET_TOPIC_STATS_INFO",
	GetConsumerConnectionList: "GET_CONSUMER_CONNECTION_LIST",
	GetProducerConnectionList: "GET_PRODUCER_CONNECTION_LIST", WipeWritePermOfBroker: "WIPE_WRITE_PERM_OF_BROKER",
	GetAllTopicListFromNameserver: "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	DeleteSubscriptionGroup:       "DELETE_SUBSCRIPTIONGROUP", GetConsumeStats: "GET_CONSUME_STATS",
	SuspendConsumer: "SUSPEND_CONSUMER", ResumeConsumer: "RESUME_CONSUMER",
	ResetConsumerOffsetInConsumer: "RESET_CONSUMER_OFFSET_IN_CONSUMER",
	ResetConsumerOffsetInBroker:   "RESET_CONSUMER_OFFSET_IN_BROKER",
	AdjustConsumerThreadPool:      "ADJUST_CONSUMER_THREAD_POOL", WhoConsumeTheMessage: "WHO_CONSUME_THE_MESSAGE",
	DeleteTopicInBroker: "DELETE_TOPIC_IN_BROKER", DeleteTopicInNamesrv: "DELETE_TOPIC_IN_NAMESRV",
	GetKVListByNamespace: "GET_KVLIST_BY_NAMESPACE", ResetConsumerClientOffset: "RESET_CONSUMER_CLIENT_OFFSET",
	GetConsumerStatusFromClient:     "GET_CONSUMER_STATUS_FROM_CLIENT",
	InvokeBrokerToResetOffset:       "INVOKE_BROKER_TO_RESET_OFFSET",
	InvokeBrokerToGetConsumerStatus: "INVOKE_BROKER_TO_GET_CONSUMER_STATUS",
	GetTopicsByCluster:              "GET_TOPICS_BY_CLUSTER", QueryTopicConsumeByWho: "QUERY_TOPIC_CONSUME_BY_WHO",
	RegisterFilterServer: "REGISTER_FILTER_SERVER", RegisterMessageFilterClass: "REGISTER_MESSAGE_FILTER_CLASS",
	QueryConsumeTimeSpan: "QUERY_CONSUME_TIME_SPAN", GetSystemTopicListFromNS: "GET_SYSTEM_TOPIC_LIST_FROM_NS",
	GetSystemTopicListFromBroker: "GET_SYSTEM_TOPIC_LIST_FROM_BROKER",
	CleanExpiredConsumeQueue:     "CLEAN_EXPIRED_CONSUMEQUEUE", GetConsumerRunningInfo: "GET_CONSUMER_RUNNING_INFO",
	QueryCorrectionOffset: "QUERY_CORRECTION_OFFSET", ConsumeMessageDirectly: "CONSUME_MESSAGE_DIRECTLY",
	SendMessageV2: "SEND_MESSAGE_V2", GetUnitTopicList: "GET_UNIT_TOPIC_LIST",
	GetHasUnitSubTopicList:       "GET_HAS_UNIT_SUB_TOPIC_LIST",
	GetHasUnitSubUnunitTopicList: "GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST", CloneGroupOffset: "CLONE_GROUP_OFFSET",
	ViewBrokerStatsData: "VIEW_BROKER_STATS_DATA", CleanUnusedTopic: "CLEAN_UNUSED_TOPIC",
	GetBrokerConsumeStats: "GET_BROKER_CONSUME_STATS", UpdateNamesrvConfig: "UPDATE_NAMESRV_CONFIG",
	GetNamesrvConfig: "GET_NAMESRV_CONFIG", SendBatchMessage: "SEND_BATCH_MESSAGE",
	QueryConsumeQueue: "QUERY_CONSUME_QUEUE", QueryDataVersion: "QUERY_DATA_VERSION",
	ResumeCheckHalfMessage: "RESUME_CHECK_HALF_MESSAGE", SendReplyMessage: "SEND_REPLY_MESSAGE",
	SendReplyMessageV2: "SEND_REPLY_MESSAGE_V2", PushReplyMessageToClient: "PUSH_REPLY_MESSAGE_TO_CLIENT",
	AddWritePermOfBroker: "ADD_WRITE_PERM_OF_BROKER", GetAllProducerInfo: "GET_ALL_PRODUCER_INFO",
	DeleteExpiredCommitLog: "DELETE_EXPIRED_COMMITLOG",
}

var responseNames = map[int16]string{
	ResponseSuccess: "SUCCESS", ResponseSystemError: "SYSTEM_ERROR", ResponseSystemBusy: "SYSTEM_BUSY",
	ResponseRequestCodeNotSupported: "REQUEST_CODE_NOT_SUPPORTED", ResponseTransactionFailed: "TRANSACTION_FAILED",
	ResponseFlushDiskTimeout: "FLUSH_DISK_TIMEOUT", ResponseSlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
	ResponseFlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT", ResponseMessageIllegal: "MESSAGE_ILLEGAL",
	ResponseServiceNotAvailable: "SERVICE_NOT_AVAILABLE", ResponseVersionNotSupported: "VERSION_NOT_SUPPORTED",
	ResponseNoPermission: "NO_PERMISSION", ResponseTopicNotExist: "TOPIC_NOT_EXIST",
	ResponseTopicExistAlready: "TOPIC_EXIST_ALREADY", ResponsePullNotFound: "PULL_NOT_FOUND",
	ResponsePullRetryImmediately: "PULL_RETRY_IMMEDIATELY", ResponsePullOffsetMoved: "PULL_OFFSET_MOVED",
	ResponseQueryNotFound: "QUERY_NOT_FOUND", ResponseSubscriptionParseFailed: "SUBSCRIPTION_PARSE_FAILED",
	ResponseSubscriptionNotExist: "SUBSCRIPTION_NOT_EXIST", ResponseSubscriptionNotLatest: "SUBSCRIPTION_NOT_LATEST",
	ResponseSubscriptionGroupNotExist: "SUBSCRIPTION_GROUP_NOT_EXIST",
	ResponseFilterDataNotExist:        "FILTER_DATA_NOT_EXIST", ResponseFilterDataNotLatest: "FILTER_DATA_NOT_LATEST",
	ResponseTransactionShouldCommit:    "TRANSACTION_SHOULD_COMMIT",
	ResponseTransactionShouldRollback:  "TRANSACTION_SHOULD_ROLLBACK",
	ResponseTransactionStateUnknow:     "TRANSACTION_STATE_UNKNOW",
	ResponseTransactionStateGroupWrong: "TRANSACTION_STATE_GROUP_WRONG", ResponseNoBuyerID: "NO_BUYER_ID",
	ResponseNotInCurrentUnit: "NOT_IN_CURRENT_UNIT", ResponseConsumerNotOnline: "CONSUMER_NOT_ONLINE",
	ResponseConsumeMsgTimeout: "CONSUME_MSG_TIMEOUT", ResponseNoMessage: "NO_MESSAGE",
	ResponseUpdateAndCreateACLConfigFailed:     "UPDATE_AND_CREATE_ACL_CONFIG_FAILED",
	ResponseDeleteACLConfigFailed:              "DELETE_ACL_CONFIG_FAILED",
	ResponseUpdateGlobalWhiteAddrsConfigFailed: "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED",
	ResponseFlowControl:                        "FLOW_CONTROL",
}

// RequestCodeName returns the Java name of a request code (e.g.
// "SEND_MESSAGE"), or the decimal value for an unknown code. For logs.
func RequestCodeName(code int16) string {
	if n, ok := requestNames[code]; ok {
		return n
	}
	return strconv.Itoa(int(code))
}

// ResponseCodeName returns the Java name of a response code (e.g.
// "PULL_NOT_FOUND"), or the decimal value for an unknown code. For logs.
func ResponseCodeName(code int16) string {
	if n, ok := responseNames[code]; ok {
		return n
	}
	return strconv.Itoa(int(code))
}

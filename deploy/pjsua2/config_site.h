/*
 * pjproject compile-time limits for voicenode (a SIP media server, not a softphone).
 *
 * deploy/pjsua2/build.sh copies this file to pjlib/include/pj/config_site.h before it
 * configures pjproject; its sha256 is part of the build's cache key, so any edit here
 * rebuilds the pjsua2 wheel. Every PyPI pjsua2 wheel keeps pjsua's desktop defaults
 * (PJSUA_MAX_CALLS 4), which `UaConfig.maxCalls` cannot raise at run time.
 *
 * Sizes per call: one pjsua call slot, one dialog, a few SIP transactions alive at once
 * (INVITE, ACK/BYE, re-INVITE, INFO/REFER/NOTIFY), two sockets (RTP + RTCP) on the shared
 * ioqueue, and two conference bridge ports (the call's stream port and the node's frame
 * port, sip/media_port.py).
 */

/* Calls held at once by one process. */
#define PJSUA_MAX_CALLS                 512

/* Accounts: the node registers a local account and a trunk (a few more leave room). */
#define PJSUA_MAX_ACC                   16

/* No file playback or recording on the node; pjsua still reserves these slots. */
#define PJSUA_MAX_PLAYERS               4
#define PJSUA_MAX_RECORDERS             4

/* Bridge ports: 2 per call, players and recorders, and slot 0 (the null sound port)
 * with room to spare: 2*512 + 4 + 4 + 16 = 1048 (>= 2*512 + 16). This is also the default
 * of `MediaConfig.maxMediaPorts`. */
#define PJSUA_MAX_CONF_PORTS            (2 * PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS + \
                                         PJSUA_MAX_RECORDERS + 16)

/* Sockets on the one ioqueue pjsip and pjmedia share (epoll, so no FD_SETSIZE cap):
 * RTP + RTCP per call (1024), SIP listeners and one TCP/TLS connection per peer, with
 * headroom. PJSIP_MAX_TRANSPORTS follows this value. The process's open-file limit must
 * allow as many (systemd LimitNOFILE). */
#define PJ_IOQUEUE_MAX_HANDLES          4096

/* Hash table sizes (2^n - 1) for transactions and dialogs; neither is a hard cap, both
 * are sized so 512 calls keep short chains. */
#define PJSIP_MAX_TSX_COUNT             (8 * 1024 - 1)
#define PJSIP_MAX_DIALOG_COUNT          (1024 - 1)

/*
 * A librdkafka mock cluster with topics created up front with chosen partition counts
 * (kcat's mock auto-creates topics with 4 partitions, and each mock partition keeps at most
 * ~5 MiB / 100k messages). Usage: mock_cluster <brokers> [topic:partitions ...]
 * Prints "BOOTSTRAP <host:port,...>" on stdout and runs until stdin closes or SIGTERM/SIGINT.
 * Built on demand by infra/kafka/mockCluster.ts with: cc mock_cluster.c -lrdkafka
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  char errstr[512];
  int brokers = argc > 1 ? atoi(argv[1]) : 1;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", errstr); return 1; }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers > 0 ? brokers : 1);
  if (!mc) { fprintf(stderr, "cannot create mock cluster\n"); return 1; }
  for (int i = 2; i < argc; i++) {
    char *spec = argv[i];
    char *colon = strrchr(spec, ':');
    if (!colon) { fprintf(stderr, "bad topic spec %s (expected name:partitions)\n", spec); return 2; }
    *colon = '\0';
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, spec, atoi(colon + 1), 1);
    if (err) { fprintf(stderr, "topic %s: %s\n", spec, rd_kafka_err2str(err)); return 3; }
  }
  printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);
  /* No SA_RESTART: a signal must interrupt the blocking read below. */
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  char buf[64];
  while (!stop) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n == 0) break; /* stdin closed: the parent is gone */
    if (n < 0 && !stop) usleep(100000);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}

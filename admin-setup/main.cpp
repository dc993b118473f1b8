// admin-setup: one-shot provisioning of a running docker-cache-proxy bundle.
#include "app.hpp"

int main(int argc, char** argv) {
  return admin::runApp(argc, argv);
}

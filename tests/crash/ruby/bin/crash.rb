# A small real Ruby program that crashes (the crash assembler's oracle, issue 11).
#
#   SENTRY_OUT=event.jsonl ruby /abs/path/bin/crash.rb SCENARIO   (cwd: the project root)
#
# The official SDK (Debian's ruby-sentry-ruby) captures the exception in-process; its
# before_send appends the event's JSON to $SENTRY_OUT and drops it (no network).
#   nested, chained, multiline, thread: left uncaught after the SDK captured it, so Ruby itself prints the
#     trace on stderr (with its cause) as a dyno prints it.
#   rails: dispatched through a framework, rescued, logged the way Rails' DebugExceptions
#     logs a 500 (Logger with its default formatter, request-id tags, application trace
#     relative to the root) and captured the way sentry-rails captures it.
require "json"
require "logger"
require "sentry-ruby"

ROOT = File.expand_path("..", __dir__)
require_relative "../vendor/bundle/ruby/3.1.0/gems/actionpack-7.0.4/lib/action_controller/metal"
require_relative "../app/controllers/orders_controller"

Sentry.init do |config|
  config.dsn = "https://public@sentry.invalid/1"
  config.background_worker_threads = 0
  config.logger = Logger.new(IO::NULL)
  config.project_root = ROOT
  config.before_send = lambda do |event, _hint|
    File.open(ENV.fetch("SENTRY_OUT"), "a") { |f| f.puts(JSON.generate(event.to_hash)) }
    nil
  end
end

def log_like_rails(e)
  logger = Logger.new($stdout)
  tag = "[4f0c7a8e-1b2d-4c3e-9f10-a1b2c3d4e5f6]"
  logger.info("#{tag} Started GET \"/orders/7\" for 10.1.2.3 at 2026-12-07 03:40:00 +0000")
  logger.info("#{tag} Processing by OrdersController#show as HTML")
  logger.info("#{tag} Completed 500 Internal Server Error in 3ms")
  trace = e.backtrace.select { |l| l.start_with?("#{ROOT}/app/") }
                     .map { |l| l.delete_prefix("#{ROOT}/") }
  ["  ", "#{e.class} (#{e.message}):", "  ", *trace].each { |l| logger.fatal("#{tag} #{l}") }
  logger.info("[9d1e4c2a-0b7f-4e55-8a61-3c2d1e0f9a8b] Started GET \"/health\" for 10.1.2.4 at 2026-12-07 03:40:01 +0000")
end

def run(scenario)
  case scenario
  when "nested" then ActionController::Metal.dispatch(OrdersController, :show)
  when "chained" then ActionController::Metal.dispatch(OrdersController, :create)
  when "multiline" then ActionController::Metal.dispatch(OrdersController, :update)
  when "thread"
    # A worker thread dies: Ruby reports it when it ends (report_on_exception) and raises
    # it again in the thread that joins it, where it ends the program.
    Thread.new { ActionController::Metal.dispatch(OrdersController, :create) }.join
  when "rails"
    begin
      ActionController::Metal.dispatch(OrdersController, :show)
    rescue StandardError => e
      log_like_rails(e)
      Sentry.capture_exception(e)
    end
  else abort("unknown scenario #{scenario}")
  end
end

begin
  run(ARGV.fetch(0))
rescue Exception => e # rubocop:disable Lint/RescueException
  Sentry.capture_exception(e)
  raise
end

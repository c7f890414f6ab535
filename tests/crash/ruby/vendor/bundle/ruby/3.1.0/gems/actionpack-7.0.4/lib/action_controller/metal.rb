# Stands in for the framework under vendor/bundle: the frames Rails' backtrace cleaner
# leaves out of its log and the SDK marks as not in_app.
module ActionController
  class Metal
    def self.dispatch(controller, action)
      controller.new.public_send(action)
    end
  end
end

# A controller-ish class, dispatched the way Rails dispatches an action.
require_relative "../models/order"

class OrdersController
  def show
    Order.new(["apple"]).customer_name
  end

  def update
    Order.new(%w[kiwi lime]).validate!
  end

  def create
    Order.new(["pear", "plum"]).charge!
  end
end

# The toy shop's model: app code whose frames the traces show.
class Order
  PRICES = { "apple" => 3, "pear" => 4 }.freeze

  attr_reader :items, :customer

  def initialize(items, customer = nil)
    @items = items
    @customer = customer
  end

  def total
    items.sum { |i| PRICES.fetch(i) }
  end

  def customer_name
    customer.name
  end

  def validate!
    problems = items.reject { |i| PRICES.key?(i) }.map { |i| "#{i}: no price" }
    raise ArgumentError, "invalid order:\n#{problems.join("\n")}" unless problems.empty?
  end

  def charge!
    total
  rescue KeyError => e
    raise ArgumentError, "cannot charge order: #{e.message}"
  end
end
